"""Avro encoders and decoders generated from one schema: fastavro's bytes, several times faster.

fastavro interprets the schema on every call (about 55 us per event, each way). When the writer
schema is the reader schema, nothing needs resolving, so each record, union and array here turns
into straight-line Python, generated and compiled once. Only the types the event schema uses are
supported; ``compile_writer``/``compile_reader`` raise ``NotImplementedError`` on anything else.

The generated code takes only the well-trodden path and raises on anything unusual (a value of
the wrong type, a negative block count, a non-minimal union index, a short body). Callers then
run fastavro, which gives the definitive answer: a result or its own error, never a different
one from ours. What the generated code calls at run time lives in ``_runtime.py``.
"""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from capi_stream.avro._runtime import GLOBALS, construct_model, model_parts

__all__ = ["Reader", "TrustRules", "Writer", "compile_reader", "compile_writer", "construct_model"]

Schema = dict[str, Any]
Writer = Callable[[Any], bytes]
Reader = Callable[[bytes, int], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TrustRules:
    """What a trusted reader checks so that its records can skip the model's validation.

    Keys are ``"Record.field"`` (Avro record names); an array's or map's rule applies to each
    item, ``"Record.field{}"`` to a map's keys. Every string needs a rule (``choices``,
    ``text_limits`` or a check): max length in characters, and non-empty, stripped and
    NUL-free, as the models' ``ShortText``/``LongText`` are. ``checks`` are predicates on
    other values; uuids become ``uuid.UUID``, one object per text for the fields in
    ``interned`` (values from a small set, such as tenant ids); each record becomes
    ``models[name]``, built without validation.
    """

    models: Mapping[str, type]
    text_limits: Mapping[str, int]
    choices: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    checks: Mapping[str, Callable[[Any], bool]] = dataclasses.field(default_factory=dict)
    interned: frozenset[str] = frozenset()


class _Source:
    """Lines of one generated function, with fresh local names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1
        self.constants: dict[str, Any] = {}
        self._count = 0
        self.rules: TrustRules | None = None
        self.record = ""  # the Avro record whose fields are being read

    def emit(self, *lines: str) -> None:
        self.lines.extend("    " * self.depth + line for line in lines)

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}{self._count}"

    def constant(self, stem: str, value: Any) -> str:
        name = self.name(stem)
        self.constants[name] = value
        return name

    def build(self, signature: str) -> Any:
        source = f"def {signature}:\n" + "\n".join(self.lines) + "\n"
        namespace = {**GLOBALS, **self.constants}
        # Generated from a schema file we ship, never from message data.
        exec(compile(source, "<avro_compiler>", "exec"), namespace)  # noqa: S102
        return namespace[signature.split("(")[0]]


def _type_of(schema: Any) -> tuple[str, Schema]:
    if isinstance(schema, str):
        return schema, {"type": schema}
    if isinstance(schema, list):
        return "union", {"type": schema}
    if isinstance(schema, dict) and isinstance(schema.get("type"), str):
        return str(schema["type"]), schema
    raise NotImplementedError(f"schema {schema!r} is not compiled")


def _nullable(schema: Schema) -> tuple[int, Any]:
    branches = schema["type"]
    names = [_type_of(branch)[0] for branch in branches]
    if len(branches) != 2 or "null" not in names or names.count("null") != 1:
        raise NotImplementedError(f"only [null, T] unions are compiled, not {branches!r}")
    value_index = 1 - names.index("null")
    return value_index, branches[value_index]


def _null_first(schema: Any) -> bool:
    return isinstance(schema, list) and len(schema) == 2 and schema[0] == "null"


def _checked_logical(kind: str, schema: Schema) -> str | None:
    logical = schema.get("logicalType")
    allowed = {"string": "uuid", "long": "timestamp-millis", "bytes": "decimal"}
    if logical is None and kind != "bytes":
        return None
    if logical != allowed.get(kind):
        raise NotImplementedError(f"{kind} with logicalType {logical!r} is not compiled")
    return str(logical)


# --- writer ----------------------------------------------------------------------------------


def _write_text(src: _Source, value: str) -> None:
    raw, size = src.name("b"), src.name("n")
    src.emit(
        f"{raw} = {value}.encode()",
        f"{size} = len({raw}) << 1",
        f"out += _VARINT[{size}] if {size} < _VARINTS else _varint({size})",
        f"out += {raw}",
    )


def _write(src: _Source, schema: Any, value: str) -> None:
    kind, schema = _type_of(schema)
    if kind == "record":
        fields = src.name("r")
        src.emit(f"{fields} = {value}.__dict__")  # where pydantic keeps field values
        for field in schema["fields"]:
            inner = src.name("v")
            src.emit(f"{inner} = {fields}[{field['name']!r}]")
            _write(src, field["type"], inner)
    elif kind == "union":
        index, branch = _nullable(schema)
        null_byte, value_byte = (b"\x00", b"\x02") if index == 1 else (b"\x02", b"\x00")
        src.emit(f"if {value} is None:", f"    out += {null_byte!r}", "else:")
        src.depth += 1
        src.emit(f"out += {value_byte!r}")
        _write(src, branch, value)
        src.depth -= 1
    elif kind in ("array", "map"):
        item = src.name("i")
        loop = f"for {item} in {value}:"
        if kind == "map":
            key = src.name("k")
            loop = f"for {key}, {item} in {value}.items():"
        src.emit(f"if len({value}) > 0:", f"    out += _long(len({value}))", f"    {loop}")
        src.depth += 2
        if kind == "map":
            _write_text(src, key)
        _write(src, schema["items" if kind == "array" else "values"], item)
        src.depth -= 2
        src.emit('out += b"\\x00"')
    elif kind == "string":
        if _checked_logical(kind, schema) == "uuid":
            src.emit(f"if isinstance({value}, _UUID):", f"    {value} = str({value})")
        _write_text(src, value)
    elif kind in ("int", "long"):
        if _checked_logical(kind, schema) == "timestamp-millis":
            delta = src.name("d")
            src.emit(
                f"{delta} = {value} - _EPOCH",  # a naive datetime raises: fastavro's case
                f"{value} = ({delta}.days * 86400 + {delta}.seconds) * 1000"
                f" + {delta}.microseconds // 1000",
            )
        else:
            src.emit(f"if type({value}) is not int:", "    raise TypeError")
        if kind == "int":
            src.emit(f"if not -_INT32 <= {value} < _INT32:", "    raise OverflowError")
        src.emit(f"out += _long({value})")
    elif kind == "bytes":
        _checked_logical(kind, schema)
        scale = int(schema.get("scale", 0))
        quantum = src.constant("Q", decimal.Decimal(1).scaleb(-scale))
        limit = 10 ** int(schema["precision"])
        src.emit(f"out += _decimal({value}, {quantum}, {scale}, {limit})")
    else:
        raise NotImplementedError(f"Avro type {kind!r} is not compiled")


def compile_writer(schema: Schema, prefix: bytes = b"") -> Writer:
    """Encoder of a pydantic model (any object keeping its fields in ``__dict__``) to bytes.

    Gives fastavro's bytes for the object's ``model_dump()``, decimals quantised to the schema's
    scale (see ``event_to_record``), after ``prefix``. Raises on values fastavro would have to
    convert or reject (a naive datetime, an int beyond the Avro type, a value of another type).
    """
    src = _Source()
    src.emit(f"out = bytearray({src.constant('PREFIX', prefix)})")
    _write(src, schema, "record")
    src.emit("return bytes(out)")
    writer: Writer = src.build("write_record(record)")
    return writer


# --- reader ----------------------------------------------------------------------------------


def _read_varint(src: _Source, target: str) -> None:
    src.emit(
        f"{target} = data[pos]",
        "pos += 1",
        f"if {target} > 127:",
        f"    {target}, pos = _varint_tail(data, pos, {target})",
    )


def _read_long(src: _Source, target: str) -> None:
    _read_varint(src, target)
    src.emit(f"{target} = ({target} >> 1) ^ -({target} & 1)")


def _read_raw(src: _Source, target: str) -> None:
    end = src.name("e")
    _read_varint(src, end)
    src.emit(
        f"if {end} & 1:",
        "    raise _BadInput",
        f"{end} = pos + ({end} >> 1)",
        f"{target} = data[pos:{end}]",
        f"pos = {end}",
    )


def _read_text(src: _Source, target: str) -> None:
    # A short length is one even byte; the text is sliced from the latin-1 view while ASCII.
    end = src.name("e")
    src.emit(
        f"{end} = data[pos]",
        f"if {end} & 0x81:",
        f"    {target}, pos = _text(data, pos)",
        "else:",
        f"    {end} = pos + 1 + ({end} >> 1)",
        f"    {target} = text[pos + 1:{end}]",
        f"    if not {target}.isascii():",
        f"        {target} = data[pos + 1:{end}].decode()",
        f"    pos = {end}",
    )


def _read_record(src: _Source, fields: list[Schema], target: str) -> None:
    # Copying an all-None template and setting what is present beats building the dict.
    template = src.constant("T", dict.fromkeys(field["name"] for field in fields))
    src.emit(f"{target} = {template}.copy()")
    start = 0
    while start < len(fields):
        stop = start
        while stop < len(fields) and _null_first(fields[stop]["type"]):
            stop += 1
        run = stop - start >= 3
        if run:  # optional fields, often all absent: one comparison skips the lot
            src.emit(f"if data[pos:pos + {stop - start}] == {bytes(stop - start)!r}:")
            src.emit(f"    pos += {stop - start}", "else:")
            src.depth += 1
        for field in fields[start : max(stop, start + 1)]:
            _read_field(src, field, target)
        src.depth -= run
        start = max(stop, start + 1)


def _only_optional_scalars(fields: list[Schema]) -> bool:
    return all(
        _null_first(field["type"])
        and _type_of(field["type"][1])[0] not in ("array", "map", "record")
        for field in fields
    )


def _read_model(src: _Source, model: type, fields: list[Schema], target: str) -> None:
    """Read a record into an instance of ``model`` (with trust rules)."""
    names = dict.fromkeys(field["name"] for field in fields)
    # construct_model, inlined: a call per record costs as much as its body.
    set_dict, set_fields, set_extra, set_private, fields_set = (
        src.constant(stem, part) for stem, part in zip("DFXPS", model_parts(model), strict=True)
    )
    instance = src.name("m")
    construct = (
        f"{instance} = _new({src.constant('M', model)})",
        f"{set_dict}({instance}, {target})",
        f"{set_fields}({instance}, {fields_set})",
        f"{set_extra}({instance}, None)",
        f"{set_private}({instance}, None)",
        f"{target} = {instance}",
    )
    if not _only_optional_scalars(fields):
        _read_record(src, fields, target)
        src.emit(*construct)
        return
    # Nothing set (source ids, attribution: often): one shared instance, as the model is
    # frozen and holds nothing mutable; fewer objects per event for the garbage collector.
    empty = src.constant("E", construct_model(model, names))
    src.emit(
        f"if data[pos:pos + {len(fields)}] == {bytes(len(fields))!r}:",
        f"    pos += {len(fields)}",
        f"    {target} = {empty}",
        "else:",
    )
    src.depth += 1
    src.emit(f"{target} = {src.constant('T', dict.fromkeys(names))}.copy()")
    for field in fields:
        _read_field(src, field, target)
    src.emit(*construct)
    src.depth -= 1


def _read_field(src: _Source, field: Schema, record: str) -> None:
    kind, schema = _type_of(field["type"])
    value, assign = src.name("v"), f"{record}[{field['name']!r}] = "
    if kind != "union":
        _read(src, schema, value, field["name"])
        src.emit(assign + value)
        return
    index, branch = _nullable(schema)
    branch_byte = src.name("u")
    src.emit(f"{branch_byte} = data[pos]", "pos += 1", f"if {branch_byte} == {index << 1}:")
    src.depth += 1
    _read(src, branch, value, field["name"])
    src.emit(assign + value)
    src.depth -= 1
    src.emit(f"elif {branch_byte} != {0 if index == 1 else 2}:", "    raise _BadInput")


def _check(src: _Source, kind: str, target: str, name: str) -> None:
    """With trust rules: raise _BadInput unless the value passes the rule of ``name``."""
    rules = src.rules
    if rules is None:
        return
    key = f"{src.record}.{name}"
    if kind == "string":
        if key in rules.choices:
            allowed = src.constant("A", rules.choices[key])
            src.emit(f"if {target} not in {allowed}:", "    raise _BadInput")
        elif key in rules.text_limits:
            limit = rules.text_limits[key]
            src.emit(
                f"if not 0 < len({target}) <= {limit} or '\\x00' in {target}"
                f" or {target} != {target}.strip():",
                "    raise _BadInput",
            )
        elif key not in rules.checks:
            raise NotImplementedError(f"no rule for the text {key}")
    if key in rules.checks:
        check = src.constant("P", rules.checks[key])
        src.emit(f"if not {check}({target}):", "    raise _BadInput")


def _read(src: _Source, schema: Any, target: str, name: str = "") -> None:
    kind, schema = _type_of(schema)
    if kind == "record":
        outer, src.record = src.record, str(schema["name"])
        if src.rules is None:
            _read_record(src, schema["fields"], target)
        else:
            _read_model(src, src.rules.models[src.record], schema["fields"], target)
        src.record = outer
    elif kind == "union":
        index, branch = _nullable(schema)
        branch_byte = src.name("u")
        src.emit(
            f"{branch_byte} = data[pos]",
            "pos += 1",
            f"if {branch_byte} == {0 if index == 1 else 2}:",
            f"    {target} = None",
            f"elif {branch_byte} == {index << 1}:",
        )
        src.depth += 1
        _read(src, branch, target, name)
        src.depth -= 1
        src.emit("else:", "    raise _BadInput")
    elif kind in ("array", "map"):
        count, item = src.name("c"), src.name("i")
        src.emit(f"{target} = {'[]' if kind == 'array' else '{}'}", "while True:")
        src.depth += 1
        _read_long(src, count)
        src.emit(
            f"if {count} == 0:",
            "    break",
            f"if {count} < 0 or {count} > size - pos:",  # block sizes, or a runaway count
            "    raise _BadInput",
            f"for _ in range({count}):",
        )
        src.depth += 1
        if kind == "map":
            key = src.name("k")
            _read(src, "string", key, name + "{}")
            _read(src, schema["values"], item, name)
            src.emit(f"{target}[{key}] = {item}")
        else:
            _read(src, schema["items"], item, name)
            src.emit(f"{target}.append({item})")
        src.depth -= 2
        size = src.rules.sizes.get(f"{src.record}.{name}") if src.rules else None
        if size is not None:
            src.emit(f"if len({target}) > {size}:", "    raise _BadInput")
    elif kind == "string":
        logical = _checked_logical(kind, schema)
        _read_text(src, target)
        interned = src.rules.interned if src.rules is not None else frozenset()
        if logical == "uuid" and src.rules is None:
            src.emit(f"{target} = _uuid({target})")
        elif logical == "uuid" and f"{src.record}.{name}" in interned:
            cache, found = src.constant("U", {}), src.name("w")
            src.emit(
                f"{found} = {cache}.get({target})",
                f"if {found} is None:",
                f"    {found} = _interned_uuid({cache}, {target})",
                f"{target} = {found}",
            )
        elif logical == "uuid":
            src.emit(f"{target} = _trusted_uuid({target})")
        else:
            _check(src, kind, target, name)
    elif kind in ("int", "long"):
        logical = _checked_logical(kind, schema)
        _read_long(src, target)
        if kind == "int":
            src.emit(f"if not -_INT32 <= {target} < _INT32:", "    raise _BadInput")
        if logical == "timestamp-millis":
            src.emit(f"{target} = _EPOCH + _timedelta(0, 0, 0, {target})")  # milliseconds
        _check(src, kind, target, name)
    elif kind == "bytes":
        _checked_logical(kind, schema)
        _read_raw(src, target)
        context = src.constant("C", decimal.Context(prec=int(schema["precision"])))
        src.emit(
            f"{target} = {context}.create_decimal(int.from_bytes({target}, 'big', signed=True))"
            f".scaleb({-int(schema.get('scale', 0))}, {context})"
        )
        _check(src, kind, target, name)
    else:
        raise NotImplementedError(f"Avro type {kind!r} is not compiled")


def compile_reader(schema: Schema, rules: TrustRules | None = None) -> Reader:
    """Decoder of a body written with ``schema`` itself, starting at ``data[start]``.

    Returns what ``fastavro.schemaless_reader`` returns, except that canonical uuid text stays
    ``str``. Raises on anything it does not handle; fastavro then decides.

    With ``rules`` it returns the top record's model instead, built without validation, and
    raises on any value that breaks a rule (the caller then validates the plain record).
    """
    src = _Source()
    src.rules = rules
    src.emit("pos = start", "size = len(data)", 'text = data.decode("latin-1")')
    _read(src, schema, "record")
    # Slices stop at the end silently; a length that ran past it shows here.
    src.emit("if pos > size:", "    raise _BadInput", "return record")
    reader: Reader = src.build("read_record(data, start)")
    return reader
