"""Checkpoints pickled with protocol 3 to 5 rewritten as protocol 2, the only one torch's safe
loader (``torch.load(weights_only=True)``) reads: ``torch.save(..., pickle_protocol=4)`` and
files written through other pickling code use opcodes it refuses ("Unsupported operand 149"),
although they hold nothing but a state dict.

The rewrite only renames opcodes (``FRAME`` dropped, ``MEMOIZE`` as ``BINPUT``, short strings as
``BINUNICODE``, ``STACK_GLOBAL`` as ``GLOBAL``, bytes as protocol 2 writes them); it runs nothing, and the safe loader still checks
every global the file names. A pickle it cannot rewrite is left as it is (None), for the loader
to refuse.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile

#: torch.save's first pickle in its older (pre-zip) format: the magic number, as protocol 2+ writes it
_LEGACY_MAGIC = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}
_GETS = {"BINGET", "LONG_BINGET", "GET"}
_PUTS = {"BINPUT", "LONG_BINPUT", "PUT"}
#: protocol 0 and 1 opcodes in text form, which this does not rewrite
_BYTES = {"SHORT_BINBYTES", "BINBYTES", "BINBYTES8"}
_TEXT_ONLY = {"INT", "LONG", "FLOAT", "STRING", "PERSID", "DICT", "LIST", "INST", "OBJ", "POP_MARK"}


def protocol(data: bytes) -> int:
    """The pickle protocol ``data`` says it is written in (0 or 1 when it has no PROTO opcode)."""
    return data[1] if data[:1] == b"\x80" and len(data) > 1 else 0


def _put(index: int) -> bytes:
    return b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)


def _get(index: int) -> bytes:
    return b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


def to_protocol_2(stream: io.BytesIO) -> bytes | None:
    """The pickle at ``stream``'s position rewritten as protocol 2 (the stream is left after its
    STOP), or None where it uses opcodes that have no protocol 2 form here."""
    data = stream.getvalue()
    out: list[tuple[bytes, str | None]] = []  # each opcode written, and the string it pushes (if one)
    strings: dict[int, str] = {}  # memo entries that hold strings: fetched again as literals, never stored
    memo_size = 0
    try:
        ops = list(pickletools.genops(stream))
    except (ValueError, EOFError):
        return None
    ends = [pos for _, _, pos in ops[1:]] + [stream.tell()]
    for (op, arg, pos), end in zip(ops, ends):
        name = op.name
        if name in _TEXT_ONLY:
            return None
        if name == "PROTO":
            out.append((b"\x80\x02", None))
        elif name == "FRAME":
            continue
        elif name in _STRINGS:
            out.append((_string(arg), arg))
        elif name in _GETS:
            out.append((_string(strings[arg]), strings[arg]) if arg in strings else (_get(arg), None))
        elif name in _PUTS or name == "MEMOIZE":
            index = memo_size if name == "MEMOIZE" else arg
            memo_size = max(memo_size, index + 1)
            if out and out[-1][1] is not None:
                strings[index] = out[-1][1]  # a string: later fetches repeat it, so STACK_GLOBAL can take it
            else:
                strings.pop(index, None)
                out.append((_put(index), None))
        elif name in _BYTES:  # as protocol 2 writes bytes: _codecs.encode(latin-1 text, "latin1")
            out.append((b"c_codecs\nencode\n" + _string(arg.decode("latin-1")) + _string("latin1") + b"\x86R", None))
        elif name == "STACK_GLOBAL":
            if len(out) < 2 or out[-1][1] is None or out[-2][1] is None:
                return None
            module, qualname = out[-2][1], out[-1][1]
            if "\n" in module + qualname:
                return None
            del out[-2:]
            out.append((b"c" + module.encode() + b"\n" + qualname.encode() + b"\n", None))
        else:
            out.append((data[pos:end], None))  # as protocol 2 writes it (the safe loader judges it)
    return b"".join(chunk for chunk, _ in out)


def rewritten(path_bytes: bytes) -> bytes | None:
    """A whole checkpoint (torch.save's zip, or its older format) with its pickles as protocol 2,
    or None where none needs it or one cannot be rewritten."""
    if path_bytes.startswith(b"PK\x03\x04"):
        return _rewritten_zip(path_bytes)
    return _rewritten_legacy(path_bytes)


def _rewritten_zip(raw: bytes) -> bytes | None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
            pickles = [i for i in infos if i.filename.endswith(".pkl")]
            if not any(protocol(archive.read(i)[:2]) > 2 for i in pickles):
                return None
            target = io.BytesIO()
            with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as copy:
                for info in infos:
                    content = archive.read(info)
                    if info in pickles and protocol(content[:2]) > 2:
                        content = to_protocol_2(io.BytesIO(content))
                        if content is None:
                            return None
                    copy.writestr(info.filename, content)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    return target.getvalue()


def _rewritten_legacy(raw: bytes) -> bytes | None:
    """The older format: five pickles (magic number, protocol, system facts, the object, its
    storage keys), then the storages' bytes, kept as they are."""
    if protocol(raw) <= 2 or _LEGACY_MAGIC not in raw[:64]:
        return None
    stream = io.BytesIO(raw)
    parts = []
    for _ in range(5):
        part = to_protocol_2(stream)
        if part is None:
            return None
        parts.append(part)
    return b"".join(parts) + raw[stream.tell():]
