"""Command-line options generated from config dataclasses (the way TRL's ``TrlParser`` reads them).

Every field of a config becomes ``--field-name``, typed from its annotation, with the field's
``metadata["help"]`` as help text and its default shown. Options default to *unset*: only what the
user gives is passed on, so a config's own defaults (or a preset's, for ``relevance distill``) stay
the single source of truth, and adding a field to a config adds the option everywhere it is used.

Tuple fields (``text_fields``) are written comma-separated; list fields are repeatable options, one
item each (``--set A=1 --set B=2``: an item may hold commas); booleans as ``--flag/--no-flag``. A
field's ``metadata["metavar"]`` names its value in ``--help``.

A field whose type is itself a dataclass (``lora: LoraSettings``) is flattened: each of its fields
becomes an option named with a prefix, ``<field>_`` unless the field's ``metadata["cli_prefix"]``
says otherwise (``lora`` -> ``--lora-r``, ``--lora-alpha``; ``cli_prefix: ""`` keeps the inner
names, ``--max-new-tokens``), nested as deep as the dataclasses go. A field's
``metadata["cli_name"]`` renames its own option (within its prefix) where the plain name would
mislead. The command gets the nested settings back nested, as what was given of them
(``{"lora": {"r": 8}}``), so the config builds the inner dataclass from that dict with the inner
defaults for the rest. The flattened options of a nested field are listed under their own heading
in ``--help`` (the nested field's help text). ``exclude`` names fields by their path
(``"sampling.max_chars"``; a nested field's name leaves out all of it). Two fields that would give
the same option name are an error, not a silent override.
"""

from __future__ import annotations

import dataclasses
import inspect
import shlex
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Optional

import typer

SCALARS = (str, int, float, bool)


@dataclasses.dataclass(frozen=True)
class Extra:
    """A command option (or argument) that is not a config field, e.g. ``--preset`` or ``--seeds``."""

    name: str
    type: type
    default: Any
    help: str
    argument: bool = False


def _is_config(annotation) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def _base_type(annotation) -> type:
    """``str | None`` -> ``str``; ``tuple[str, ...]`` -> ``tuple`` (given comma-separated);
    ``list[str]`` -> ``list`` (given repeatedly); a dataclass stays itself (flattened)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    if origin is tuple:
        return tuple
    if origin is list:
        return list
    if annotation in SCALARS or _is_config(annotation):
        return annotation
    raise TypeError(f"no command-line form for a field of type {annotation!r}")


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def config_fields(config: type, exclude: Iterable[str] = ()) -> list[tuple[dataclasses.Field, type]]:
    """The config's own fields a command exposes, each with its command-line base type (a nested
    dataclass field's type is that dataclass; :func:`config_options` flattens it)."""
    hints = typing.get_type_hints(config)
    skip = set(exclude)
    return [(f, _base_type(hints[f.name])) for f in dataclasses.fields(config) if f.init and f.name not in skip]


@dataclasses.dataclass(frozen=True)
class ConfigOption:
    """One option of a config: a field at ``path`` below the config (``("lora", "r")``), named ``name``
    (``lora_r``, i.e. ``--lora-r``), with the default shown and the help heading of its nested field."""

    path: tuple[str, ...]
    name: str
    field: dataclasses.Field
    kind: type
    default: Any
    panel: str | None = None

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def config_options(config: type, exclude: Iterable[str] = ()) -> list[ConfigOption]:
    """Every option of ``config``: its scalar fields, and the fields of nested dataclass fields
    flattened under their prefix. The default shown for a nested field is the one the outer
    config's default holds (``field(default_factory=...)``), else the inner class's."""
    skip = set(exclude)
    found: list[ConfigOption] = []
    seen: set[str] = set()

    def walk(cls: type, path: tuple[str, ...], prefix: str, holder: Any, panel: str | None) -> None:
        for f, kind in config_fields(cls):
            where = (*path, f.name)
            dotted = ".".join(where)
            if dotted in skip:
                seen.add(dotted)
                continue
            default = getattr(holder, f.name) if holder is not None else _field_default(f)
            if _is_config(kind):
                inner = default if isinstance(default, kind) else None
                heading = panel or _heading(f.metadata.get("help") or f.name)
                walk(kind, where, prefix + f.metadata.get("cli_prefix", f.name + "_"), inner, heading)
            else:
                found.append(ConfigOption(where, prefix + f.metadata.get("cli_name", f.name), f, kind, default, panel))

    walk(config, (), "", None, None)
    unknown = skip - seen
    if unknown:
        raise ValueError(f"{config.__name__} has no field(s) {sorted(unknown)} to exclude")
    names: dict[str, str] = {}
    for option in found:
        if option.name in names:
            raise ValueError(f"{config.__name__}: {names[option.name]} and {option.dotted} would both be "
                             f"--{option.name.replace('_', '-')} (set a cli_prefix or cli_name, or exclude one)")
        names[option.name] = option.dotted
    return found


def config_paths(config: type) -> list[str]:
    """The dotted paths of every option of ``config`` (``["data", ..., "lora.r", "lora.alpha", ...]``)."""
    return [option.dotted for option in config_options(config)]


def _heading(help_text: str) -> str:
    return help_text[:1].upper() + help_text[1:]


def _option(name: str, kind: type, help_text: str, argument: bool = False, metavar: str | None = None,
            panel: str | None = None):
    flag = "--" + name.replace("_", "-")
    if argument:
        return typer.Argument(help=help_text, show_default=False)
    if kind is bool:
        return typer.Option(f"{flag}/--no-{name.replace('_', '-')}", help=help_text, show_default=False,
                            rich_help_panel=panel)
    return typer.Option(flag, help=help_text, show_default=False, metavar=metavar, rich_help_panel=panel)


def config_command(
    config: type,
    run: Callable[[dict[str, Any], dict[str, Any]], None],
    *,
    exclude: Iterable[str] = (),
    extras: Iterable[Extra] = (),
    defaults: Mapping[str, Any] | None = None,
    doc: str | None = None,
    context: bool = False,
) -> Callable[..., None]:
    """A typer command for ``config``: ``run(given, extras)`` gets the config fields the user set
    (typed, tuples split; those of a nested dataclass field as a nested dict) and the values of the
    ``extras`` (with ``context``, also ``extras["ctx"]``, the click context, for :func:`command_line`).

    ``defaults`` overrides the default *shown* for a field (by its path, ``"out"`` or ``"lora.r"``)
    where the command passes its own (e.g. ``relevance quant-aware`` fine-tunes at ``lr`` 1e-5); the
    command must apply it itself.
    """
    defaults = dict(defaults or {})
    parameters, annotations = [], {}
    options: dict[str, ConfigOption] = {}
    if context:
        parameters.append(inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context))
        annotations["ctx"] = typer.Context
    for extra in extras:
        help_text = extra.help
        if extra.default not in (dataclasses.MISSING, None, "", False) and "(default" not in help_text:
            help_text += f" (default: {_shown(extra.default)})"
        annotation = Annotated[extra.type, _option(extra.name, extra.type, help_text, extra.argument)]
        default = inspect.Parameter.empty if extra.default is dataclasses.MISSING else extra.default
        parameters.append(inspect.Parameter(extra.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                            default=default))
        annotations[extra.name] = annotation
    extra_names = {e.name for e in extras} | ({"ctx"} if context else set())
    for entry in config_options(config, exclude):
        if entry.name in extra_names:
            raise ValueError(f"--{entry.name.replace('_', '-')} is both {entry.dotted} and an extra")
        f, kind = entry.field, entry.kind
        shown = defaults.get(entry.dotted, entry.default)
        help_text = f.metadata.get("help", "")
        # (square brackets would be read as rich markup and vanish from --help)
        unset = shown is dataclasses.MISSING or shown in ("", None, (), [])
        if not unset and "(default" not in help_text:
            help_text += f" (default: {_shown(shown)})"
        cli_type = {tuple: str, list: list[str]}.get(kind, kind)
        option = _option(entry.name, kind, help_text, metavar=f.metadata.get("metavar"), panel=entry.panel)
        annotation = Annotated[Optional[cli_type], option]
        parameters.append(inspect.Parameter(entry.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                            default=None))
        annotations[entry.name] = annotation
        options[entry.name] = entry

    def command(**values: Any) -> None:
        given: dict[str, Any] = {}
        for name, value in values.items():
            if name in extra_names or value is None:
                continue
            entry = options[name]
            if entry.kind is tuple:
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            target = given
            for key in entry.path[:-1]:  # a nested field's settings, nested back
                target = target.setdefault(key, {})
            target[entry.path[-1]] = value
        run(given, {k: v for k, v in values.items() if k in extra_names})

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    command.__doc__ = doc if doc is not None else run.__doc__
    command.__name__ = getattr(run, "__name__", "command")
    return command


def command_line(ctx: typer.Context, program: str = "relevance") -> str:
    """The command that reproduces this run, rebuilt from the parsed options (not from sys.argv,
    which under a test runner or ``python -m`` names the runner, not this command): the command's
    path below the program (``relevance lab profile``), its arguments in order, then the options
    that were set."""
    names, parent = [], ctx
    while parent is not None and parent.parent is not None:  # the root's name is the runner's, not ours
        names.append(parent.info_name or "")
        parent = parent.parent
    parts = [program, *reversed(names)]
    params = [p for p in ctx.command.params if p.name in ctx.params]
    for param in params:  # arguments first, as a reader writes them
        if getattr(param, "param_type_name", "") == "argument":
            value = ctx.params[param.name]
            parts += [shlex.quote(str(v)) for v in (value if isinstance(value, (list, tuple)) else [value])]
    for param in params:
        value = ctx.params[param.name]
        if getattr(param, "param_type_name", "") == "argument":
            continue
        if value is False and param.default is None and getattr(param, "secondary_opts", None):
            parts.append(param.secondary_opts[0])  # an explicit --no-flag of a generated option
            continue
        if value is None or value is False or value == () or value == "":
            continue
        if value is True:
            parts.append(param.opts[0])
        elif isinstance(value, (list, tuple)):
            for item in value:
                parts += [param.opts[0], shlex.quote(str(item))]
        else:
            parts += [param.opts[0], shlex.quote(str(value))]
    return " ".join(parts)
