"""Training data: readers for each corpus (all yield `Pair` or text documents), the split, augmentation."""
