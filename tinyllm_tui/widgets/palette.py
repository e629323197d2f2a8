"""The app's actions in the command palette (ctrl+p)."""
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, action on the app, help)
COMMANDS = [
    ("Go to Suggest", "show_tab('suggest')", "Type a request and get commands"),
    ("Go to Train", "show_tab('train')", "Start, follow, stop and resume training runs"),
    ("Go to Review", "show_tab('review')", "Accept, reject or edit corrections; run a gated update"),
    ("Go to Models", "show_tab('models')", "Activate a model version or roll back"),
    ("Reload model", "reload_model", "Load the active model again"),
    ("Start training run", "panel('train', 'start_job')", "Start a run with the Train tab's settings"),
    ("Stop training run", "panel('train', 'stop_job')", "Stop the selected run (saves a checkpoint)"),
    ("Run gated update", "panel('review', 'run_update')", "Learn accepted corrections if the gate passes"),
    ("Roll back model", "panel('models', 'rollback')", "Activate the version before the active one"),
    ("Help", "help", "Keys and what each tab does"),
]


class AppCommands(Provider):
    def _run(self, action: str) -> None:
        self.app.call_later(self.app.run_action, action)

    async def discover(self) -> Hits:
        for title, action, help_text in COMMANDS:
            yield DiscoveryHit(title, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self._run, action), help=help_text)
