"""Which flows read each input, and the inputs a run's flow ignores.

Every input of action.yml, with its default there (the runner passes it for an
input the step's ``with:`` leaves out) and the rule that says which flows read
it, in terms of what a flow does (``FlowSpec``: it runs the stages, pulls,
creates, switches a domain, prunes; the inputs it needs; its deployments).
Adding a flow is then one row in ``flows/specs.py``: the inputs it reads
follow from what it does, with no list per flow to keep.

An input the chosen flow does not read is dropped: ``ignored_inputs`` names
those the user set to something other than their default (the runner sends
the defaults of all the others), for one warning. So is an input the flow
reads that another input leaves with nothing to do (``unused_inputs``:
delete-previous when nothing is switched, as when ``domain`` comes from an
unset variable; deployment-environment without github-token): the same
warning names it with the setting that makes it unused. Names only, never
values. Standard library only: config reads it before any request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .flows.specs import SPECS, FlowSpec
from .inputs import Inputs

Reads = Callable[[FlowSpec], bool]


def every(_spec: FlowSpec) -> bool:
    return True


def stages(spec: FlowSpec) -> bool:
    return spec.stages


def pulls(spec: FlowSpec) -> bool:
    return spec.pulls


def creates(spec: FlowSpec) -> bool:
    return spec.creates


def switches(spec: FlowSpec) -> bool:
    return spec.switches


def checks_health(spec: FlowSpec) -> bool:
    """It starts a workspace or points a domain at one: the health check."""
    return spec.stages or spec.switches


def stages_before_switch(spec: FlowSpec) -> bool:
    """It builds a workspace and may switch to it (switch: false stages it)."""
    return spec.creates and spec.switches


def compares_commit(spec: FlowSpec) -> bool:
    return spec.commit != ""  # a rollback reads require-commit to refuse true


def records_deployments(spec: FlowSpec) -> bool:
    return spec.deployment != "none"


def prunes(spec: FlowSpec) -> bool:
    return spec.prunes


def bakes(spec: FlowSpec) -> bool:
    return spec.bakes


def needed(name: str) -> Reads:
    """Read by the flows whose spec needs it (``FlowSpec.needs``)."""

    def reads(spec: FlowSpec) -> bool:
        return name in spec.needs

    return reads


@dataclass(frozen=True)
class Use:
    default: str  # as action.yml gives it ("" for none)
    reads: Reads


INPUTS: dict[str, Use] = {  # action.yml's order
    "api-token": Use("", every),
    "api-url": Use("https://cloud.codesphere.com/api", every),
    "flow": Use("simple", every),
    "profile": Use("", stages),
    "prepare": Use("true", stages),
    "test": Use("false", stages),
    "stage-timeout": Use("30m", stages),
    "show-logs": Use("failure", stages),
    "workspace-timeout": Use("10m", stages),
    "workspace-id": Use("", needed("workspace-id")),
    "remote": Use("origin", pulls),
    "branch": Use("", stages),
    "team-id": Use("", needed("team-id")),
    "plan-id": Use("", needed("plan-id")),
    "git-url": Use("", needed("git-url")),
    "private-repo": Use("false", creates),
    "replicas": Use("1", creates),
    "workspace-name": Use("", needed("workspace-name")),
    "env": Use("", creates),
    "secret-env": Use("", creates),
    "secret-store": Use("env", creates),
    "base-image": Use("", creates),
    "clone-depth": Use("", creates),
    "restricted": Use("", creates),
    "shared-vault-name": Use("", creates),
    "storage-mib": Use("", creates),
    "vpn-config": Use("", creates),
    "domain": Use("", switches),
    "domain-path": Use("/", switches),
    "delete-previous": Use("false", switches),
    "switch": Use("true", stages_before_switch),
    "health-check-path": Use("", checks_health),
    "health-check-status": Use("200-399", checks_health),
    "health-check-timeout": Use("5m", checks_health),
    "health-check-domain": Use("true", switches),
    "bake-time": Use("0", bakes),
    "require-commit": Use("false", compares_commit),
    "cleanup-on-failure": Use("true", creates),
    "keep": Use("1", prunes),
    "max-age": Use("7d", prunes),
    "dry-run": Use("false", every),
    "github-token": Use("", every),
    "deployment-environment": Use("", records_deployments),
}


def readers(name: str) -> tuple[str, ...]:
    """The flows that read input ``name``, in the table's order."""
    return tuple(flow for flow, spec in SPECS.items() if INPUTS[name].reads(spec))


def ignored_inputs(inputs: Inputs, spec: FlowSpec) -> tuple[str, ...]:
    """The inputs ``spec``'s flow does not read that were set to something other
    than their default (empty counts as the default, as every parser takes it),
    in action.yml's order."""
    return tuple(
        name
        for name, use in INPUTS.items()
        if not use.reads(spec) and _set(inputs.raw(name), use.default)
    )


def _set(value: str, default: str) -> bool:
    text = value.strip().lower()
    return bool(text) and text != default.lower()


@dataclass(frozen=True)
class Unused:
    """Inputs the flow reads, set, that another setting leaves with nothing to
    do; ``why``: that setting, and what follows from it."""

    why: str
    names: tuple[str, ...]


def unused_inputs(inputs: Inputs, spec: FlowSpec) -> tuple[Unused, ...]:
    """The inputs ``spec``'s flow reads that were set to something other than
    their default, but that the other inputs leave unused: one group per
    setting (``_idle``), each input in the first group that has it."""
    groups: list[Unused] = []
    named: set[str] = set()
    for why, names in _idle(inputs, spec):
        given = tuple(
            name
            for name in names
            if name not in named
            and INPUTS[name].reads(spec)
            and _set(inputs.raw(name), INPUTS[name].default)
        )
        named.update(given)
        if given:
            groups.append(Unused(why, given))
    return tuple(groups)


def _idle(inputs: Inputs, spec: FlowSpec) -> Iterator[tuple[str, tuple[str, ...]]]:
    """What a setting leaves unused: (the setting and its effect, the inputs). A
    flow that needs the domain, or always joins (a canary), refuses the inputs
    that would switch nothing, before any request (needs.py); bake-time without
    a switch is refused too (``needs.bake_time``)."""
    switch_off = inputs.get("switch", "true").lower() == "false"
    if spec.switches and "domain" not in spec.needs and not inputs.get("domain"):
        yield (
            "domain is empty, so nothing is switched: is its variable set?",
            ("domain-path", "delete-previous", "health-check-domain"),
        )
    elif stages_before_switch(spec) and not spec.joins and switch_off:
        yield (
            "switch: false stages the release, so nothing is switched",
            ("delete-previous", "health-check-domain"),
        )
    if checks_health(spec) and not inputs.get("health-check-path"):
        yield (
            "health-check-path is empty, so nothing is health-checked",
            ("health-check-status", "health-check-timeout", "health-check-domain"),
        )
    if records_deployments(spec) and not inputs.get("github-token"):
        yield (
            "github-token is empty, so no GitHub deployment is recorded",
            ("deployment-environment",),
        )


def ignored_warning(flow: str, names: tuple[str, ...], unused: tuple[Unused, ...] = ()) -> str:
    """One warning naming the ignored inputs (never a value): for each group of
    those the flow does not read, the flows that do; for each group of those
    another setting leaves unused, that setting."""
    parts = []
    if names:
        groups: dict[tuple[str, ...], list[str]] = {}
        for name in names:
            groups.setdefault(readers(name), []).append(name)
        listed = "; ".join(f"{', '.join(group)} ({', '.join(by)})" for by, group in groups.items())
        one = len(names) == 1
        parts.append(
            f"the {flow} flow ignores {'this input' if one else 'these inputs'}, which only "
            f"other flows read: {listed}. Remove {'it' if one else 'them'} from the step's "
            f"with:, or choose a flow that reads {'it' if one else 'them'}"
        )
    if unused:
        listed = "; ".join(f"{', '.join(group.names)} ({group.why})" for group in unused)
        one = sum(len(group.names) for group in unused) == 1
        parts.append(
            f"{'this input does' if one else 'these inputs do'} nothing with the other inputs "
            f"as they are: {listed}. Remove {'it' if one else 'them'}, or set what "
            f"{'it needs' if one else 'they need'}"
        )
    return ". ".join(part[:1].upper() + part[1:] if i else part for i, part in enumerate(parts))
