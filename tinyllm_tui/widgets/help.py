"""F1 help: what each tab does and its keys (the Footer shows the keys for where the focus is)."""
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# tinyllm

**Suggest** — type what you want in plain English and press *Enter*. Candidates stream in best first,
each with its score; a **⚠ DESTRUCTIVE** badge says why a command could destroy data.
*Down* moves to the candidates: **c** copies one (works over ssh and tmux), **e** corrects it —
edit the command and press *Enter* to queue the correction for review (*Esc* cancels).

**Train** — pick a phase, preset, steps and data specs, then **Start** (*ctrl+s*). The run goes on in
the background even if the app closes; reopening the app finds it again. **Stop** (*ctrl+t*) saves a
checkpoint, **Resume** (*ctrl+r*) continues a stopped run.

**Review** — corrections from the app and your shell: **a** accept, **r** reject, **e** edit.
**u** runs a gated update: the model learns the accepted corrections and is kept only if it does not
forget what it knew.

**Models** — versions with their scores and provenance; **a** (or *Enter*) activates one, **b** rolls
back.

**Everywhere** — *F2*–*F5* switch tabs, *ctrl+p* opens the command palette, *F1* this help,
*ctrl+q* quits.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape,f1,q", "dismiss", "Close", tooltip="Close the help", id="close-help"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
