"""The `tinyllm` command line and the Textual app."""
