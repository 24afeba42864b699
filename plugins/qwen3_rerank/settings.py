"""Settings read from flags, the environment and ``.env`` by one mechanism (pydantic-settings).

`RerankerSettings` is the reranker's part (``QWEN3_RERANK_*``, and ``QWEN3_RAG_DEVICE`` for the
device of every model); the pipelines' ``qwen3_rag.settings.Settings`` and the server's
``ServerSettings`` extend it, so every command reads one variable per knob the same way. Each
field is declared with `env`, which names its one variable; the documentation's table is
generated from the models (`markdown_table`), so it cannot drift.

Example:
    >>> RerankerSettings.from_env({"QWEN3_RERANK_DTYPE": "float32"}, device="cuda").reranker_config().device
    'cuda:0'
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, BaseModel, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from .config import KNOBS, DType, Knob, RerankerConfig, knobs  # noqa: F401 - DType: for the CLI

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
SECRET_VARIABLES = frozenset(
    {"ES_API_KEY", "ES_PASSWORD", "OPENAI_API_KEY", "HF_TOKEN", "QWEN3_SERVER_API_KEYS"}
)

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("qwen3_environ", default=None)
S = TypeVar("S", bound="SettingsBase")


def env(variable: str, default: Any, description: str, *, also: tuple[str, ...] = (), **checks: Any) -> Any:
    """A field read from the environment variable ``variable`` (then the older names ``also``).

    This is the one way a setting is declared: its variable, default and description live
    together, and the documentation table is generated from them.
    """
    return Field(
        default,
        description=description,
        validation_alias=AliasChoices(variable, *also),
        repr=variable not in SECRET_VARIABLES,
        **checks,
    )


def variables(field: FieldInfo) -> list[str]:
    """The environment variables of a field, its main name first."""
    alias = field.validation_alias
    assert isinstance(alias, AliasChoices), "declare settings with env()"
    return [str(choice) for choice in alias.choices]


class SettingsBase(BaseSettings):
    """What every settings model shares: the sources, their order, and `from_env`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        protected_namespaces=(),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is None:
            return init_settings, env_settings, dotenv_settings
        # An explicit mapping replaces the process environment and .env (tests, embedding apps).
        source = EnvSettingsSource(settings_cls, env_ignore_empty=True)
        source.env_vars = {name.lower(): value for name, value in environ.items() if value.strip()}
        return init_settings, source

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
        """Settings from ``overrides`` (flags, by field name; ``None`` means unset), then
        ``environ`` (default: the process environment and ``.env``), then the defaults.

        Raises:
            TypeError: An override names no setting.
            ValueError: A value is invalid; the message names the setting and its variable.
        """
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unknown setting(s) {unknown}; expected some of {sorted(cls.model_fields)}")
        given = {name: value for name, value in overrides.items() if value is not None}
        with _environment(environ):
            try:
                return cls(**given)
            except ValidationError as error:
                raise ValueError(describe(error, cls)) from None

    def to_public_dict(self) -> dict[str, Any]:
        """JSON-ready fields without the secrets, for serialised pipelines and reports;
        ``from_env(**settings.to_public_dict())`` rebuilds them, secrets from the environment."""
        secrets = {name for name, field in type(self).model_fields.items() if not field.repr}
        return self.model_dump(mode="json", exclude=secrets)

    def replace(self: S, **changes: Any) -> S:
        """A copy with some fields changed, validated again."""
        return type(self).from_env({}, **(self.model_dump() | changes))

    @classmethod
    def table(cls) -> list[tuple[str, str, str, str]]:
        """(variable, setting, default, description) for every setting, as the docs list them."""
        rows = []
        for name, field in cls.model_fields.items():
            names = variables(field)
            also = f" (also `{'`, `'.join(names[1:])}`)" if len(names) > 1 else ""
            default = "" if field.default is None else f"`{field.default}`"
            rows.append((names[0], name, default, f"{field.description}{also}"))
        return rows


def pydantic_field(spec: Knob, **options: Any) -> tuple[Any, FieldInfo]:
    """A reranker setting as a pydantic field definition (type, ``Field``), as `create_model` takes it."""
    checks = {} if spec.minimum is None else {"ge": spec.minimum}
    info = Field(spec.default, description=spec.description, **checks, **options)
    return spec.type, info


M = TypeVar("M", bound=BaseModel)


def reranker_fields(base: type[M], *, exclude: Collection[str] = ()) -> type[M]:
    """``base`` (a framework's pydantic component) with one field per reranker setting.

    Names, types, defaults, checks and descriptions come from `RerankerConfig`'s declarations
    (secrets left out), so an adapter written as ``class MyReranker(reranker_fields(Base))``
    gains every new setting without restating it. Hand the values to the core with
    ``share(reranker, **load_settings(self, [spec.name for spec in knobs(exclude=exclude)]))``.
    """
    fields = {spec.name: pydantic_field(spec) for spec in knobs(exclude=exclude)}
    return create_model(f"{base.__name__}WithRerankerFields", __base__=base, __module__=__name__, **fields)


class _RerankerSettingsBase(SettingsBase):
    def reranker_config(self) -> RerankerConfig:
        """The core's value for these settings: the reranker they describe, normalised."""
        return RerankerConfig(**{spec.name: getattr(self, spec.setting) for spec in KNOBS if spec.env})


RerankerSettings = create_model(
    "RerankerSettings",
    __base__=_RerankerSettingsBase,
    __doc__="How the reranker loads (``QWEN3_RERANK_*``) and the device of every model "
    "(``QWEN3_RAG_DEVICE``): one field per `RerankerConfig` setting with an environment variable.",
    __module__=__name__,
    **{
        spec.setting: pydantic_field(spec, validation_alias=AliasChoices(spec.env))
        for spec in KNOBS
        if spec.env
    },
)


def describe(error: ValidationError, model: type[BaseSettings]) -> str:
    """One line per bad value, naming the setting, its variable and what is expected."""
    lines = []
    for problem in error.errors():
        location = str(problem["loc"][0]) if problem["loc"] else ""
        field = next(
            (name for name, info in model.model_fields.items() if location in (name, *variables(info))), None
        )
        message = problem["msg"].removeprefix("Value error, ")
        if field is None:
            lines.append(message)
            continue
        got = "" if "got " in message else f"; got {problem.get('input')!r}"
        lines.append(f"{field} ({variables(model.model_fields[field])[0]}): {message}{got}")
    return "\n".join(lines)


@contextmanager
def _environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


TABLE_START, TABLE_END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def with_table(page: str, *models: type[SettingsBase]) -> str:
    """``page`` with the text between its table markers replaced by the table of ``models``."""
    head, rest = page.split(TABLE_START, 1)
    return f"{head}{TABLE_START}\n{markdown_table(*models)}{TABLE_END}{rest.split(TABLE_END, 1)[1]}"


def markdown_table(*models: type[SettingsBase]) -> str:
    """The documentation's table of variables, one row per setting of ``models``."""
    rows = ["| Variable | Setting (`--set`) | Default | Meaning |", "| --- | --- | --- | --- |"]
    seen: set[str] = set()
    for model in models:
        for variable, name, default, description in model.table():
            if variable not in seen:
                seen.add(variable)
                rows.append(f"| `{variable}` | `{name}` | {default} | {description} |")
    return "\n".join(rows) + "\n"
