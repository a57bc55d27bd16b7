"""The named steps the flows share, one level below them: the workspace (find, wake,
wait, pull), stages, creating a workspace once and cleaning up, the domain switch,
the checks before and after it, what the action may delete."""
