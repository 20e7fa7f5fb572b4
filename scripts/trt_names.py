#!/usr/bin/env python3
"""Extract the Python API names of real TensorRT bindings wheels into small test fixtures.

Why: TensorRT cannot be installed here, so the SDK's TensorRT code runs only against our fakes
(tests/fakes/fake_tensorrt.py). NVIDIA's bindings wheels, however, download fine and their
tensorrt.so (pybind11) cannot be imported without libnvinfer but can be read: this script finds,
in code order, every string the module-init code loads with a RIP-relative `lea` (class names,
method/property names, enum members, argument names, docstrings) and every docstring loaded through
a `tensorrt::<Class>Doc::<member>` symbol, and attributes names to classes by position: a
CamelCase name opens a class, the names after it belong to it until the next class. Docstrings'
`:arg x:` lines give argument names. The result is a superset of each class's members (argument
names used in a class's bindings are counted too), which is what a presence check needs.

    python scripts/trt_names.py            # download the three wheels, rewrite tests/fixtures/trt_names/
    python scripts/trt_names.py --wheels DIR  # use wheels already in DIR (no network)
"""
from __future__ import annotations

import argparse
import ast
import bisect
import hashlib
import json
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "tests" / "fixtures" / "trt_names"
WHEELS = (  # (pip requirement, TensorRT version, wheel platform tag)
    ("tensorrt-bindings==8.6.1", "8.6.1", "manylinux_2_17_x86_64"),
    ("tensorrt-cu12-bindings==10.3.0", "10.3.0", "manylinux_2_17_x86_64"),
    ("tensorrt-cu12-bindings==11.4.0.106", "11.4.0.106", "manylinux_2_28_x86_64"),
)
IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*")  # CamelCase, not an UPPER enum member
MEMBER_NAME = re.compile(r"[a-z_][a-z0-9_]*|[A-Z][A-Z0-9_]*")    # snake_case method/property, UPPER member
MANGLED = re.compile(r"N\d|St\d|_Z")  # typeinfo names, not Python classes
PYBIND_TEMPLATE = re.compile(r"_ZN8pybind11\d+(?:class_|enum_)I")
DOC_SYMBOL = re.compile(r"_ZN8tensorrt\d+(\w+?)DocL\d+(\w+)E")  # tensorrt::<Class>Doc::<member>
CPP_RENAMES = {  # nvinfer1 / nvonnxparser class -> Python name (TensorRT's Python API docs)
    "IBuilder": "Builder", "IRuntime": "Runtime", "IRefitter": "Refitter", "IParser": "OnnxParser",
    "IParserError": "ParserError", "IParserRefitter": "OnnxParserRefitter", "IEngineInspector": "EngineInspector",
    "Dims64": "Dims", "IKernelLaunchParams": "KernelLaunchParams",
}
ARG_LINE = re.compile(r":arg (\w+):")
R_X86_64_RELATIVE = 8


def download(requirement: str, platform: str, dest: Path) -> Path:
    """pip download one cp311 wheel (no dependencies: the *-libs packages are not needed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.11", "--implementation", "cp", "--platform", platform, "-d", str(dest), requirement]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    name, version = requirement.split("==")
    found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"trt_names: error: pip did not leave a wheel for {requirement} in {dest}")
    return found[0]


class Elf:
    """Just enough ELF64 little-endian to read sections, RELATIVE relocations and .symtab."""

    def __init__(self, data: bytes):
        if data[:4] != b"\x7fELF" or data[4] != 2:
            raise ValueError("not an ELF64 file")
        self.data = data
        shoff, = struct.unpack_from("<Q", data, 0x28)
        entsize, count, strndx = struct.unpack_from("<HHH", data, 0x3A)
        raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * entsize) for i in range(count)]
        names_off = raw[strndx][4]
        self.sections = {self.cstr(names_off + s[0]).decode(): (s[3], s[4], s[5]) for s in raw}

    def cstr(self, offset: int) -> bytes:
        return self.data[offset:self.data.index(b"\0", offset)]

    def section(self, name: str):
        """(virtual address, file offset, size)."""
        return self.sections[name]

    def string_at(self, addr: int) -> bytes:
        va, off, size = self.section(".rodata")
        if not va <= addr < va + size:
            return b""
        return self.cstr(addr - va + off)

    def relative_relocs(self) -> dict:
        _, off, size = self.section(".rela.dyn")
        out = {}
        for i in range(0, size, 24):
            where, info, addend = struct.unpack_from("<QQq", self.data, off + i)
            if info & 0xFFFFFFFF == R_X86_64_RELATIVE:
                out[where] = addend
        return out

    def symbols(self):
        """(name, value, size, is_function) of every .symtab entry."""
        _, off, size = self.section(".symtab")
        str_off = self.section(".strtab")[1]
        for i in range(0, size, 24):
            name, info, _other, _shndx, value, sym_size = struct.unpack_from("<IBBHQQ", self.data, off + i)
            yield self.cstr(str_off + name).decode("latin1"), value, sym_size, info & 0xF == 2


def _mangled_class(name: str):
    """C++ class X of a pybind11::class_<X>/enum_<X> member function's mangled name, e.g. 'IBuilder'."""
    m = PYBIND_TEMPLATE.match(name)
    if not m:
        return None
    i, parts = m.end(), []
    nested = name[i] == "N"
    i += nested
    while i < len(name) and name[i].isdigit():
        digits = re.match(r"\d+", name[i:]).group()
        i += len(digits)
        parts.append(name[i:i + int(digits)])
        i += int(digits)
        if not nested:
            break
    if not parts or parts[0] not in ("nvinfer1", "nvonnxparser", "tensorrt"):
        return None
    return parts[-1]


class Functions:
    """Which pybind11 class_<X>/enum_<X> template function an address lies in (pybind11 v3 + LTO
    outlines each .def into one, so code order alone no longer tells the class)."""

    def __init__(self, elf: Elf):
        rows = sorted(((v, s, _mangled_class(n), n) for n, v, s, f in elf.symbols() if f and s), key=lambda r: r[0])
        self.starts = [r[0] for r in rows]
        self.rows = rows
        self.constructors = {v: cls for v, _s, cls, n in rows if cls and re.search(r"E(C[12])I", n)}

    def at(self, addr: int):
        """(C++ class or None, is a constructor) of the function containing addr."""
        k = bisect.bisect_right(self.starts, addr) - 1
        if k < 0:
            return None, False
        start, size, cls, name = self.rows[k]
        if not start <= addr < start + size or cls is None:
            return None, False
        return cls, bool(re.search(r"E(C[12])I", name))


def code_order_strings(elf: Elf):
    """[(kind, value, owner)] in .text order. kind 'name' (identifier), 'doc' (docstring) or 'docsym'
    (value = (class, member, doc)); owner = (C++ class, in its constructor) when the load sits in a
    pybind11 class_<X>/enum_<X> function, else (None, False)."""
    relocs = elf.relative_relocs()
    docsyms = {}
    for name, value, _size, _func in elf.symbols():
        m = DOC_SYMBOL.fullmatch(name)
        if m and value in relocs:
            docsyms[value] = (m.group(1), m.group(2), elf.string_at(relocs[value]).decode("utf-8", "replace"))
    functions = Functions(elf)
    va, off, size = elf.section(".text")
    text = elf.data[off:off + size]
    out = []
    # call rel32 to a class_<X>/enum_<X> constructor: "the bindings of X start here"
    for m in re.finditer(rb"\xe8", text):
        i = m.start()
        if i + 5 <= len(text):
            cls = functions.constructors.get(va + i + 5 + struct.unpack_from("<i", text, i + 1)[0])
            if cls:
                out.append((va + i, "class", cls, (None, False)))
    # lea/mov r64, [rip + disp32] (REX.W or REX.WR); the target is the next instruction + disp32
    for m in re.finditer(rb"[\x48\x4c][\x8d\x8b][\x05\x0d\x15\x1d\x25\x2d\x35\x3d]", text):
        i = m.start()
        target = va + i + 7 + struct.unpack_from("<i", text, i + 3)[0]
        owner = functions.at(va + i)
        if target in docsyms:  # the address of a tensorrt::<Class>Doc::<member> pointer
            out.append((va + i, "docsym", docsyms[target], owner))
            continue
        if text[i + 1] == 0x8B:
            continue
        s = elf.string_at(target)
        if IDENT.fullmatch(s):
            out.append((va + i, "name", s.decode(), owner))
        elif len(s) > 3:
            out.append((va + i, "doc", s.decode("utf-8", "replace"), owner))
    return [row[1:] for row in sorted(out, key=lambda row: row[0])]


def python_class_names(seq):
    """C++ class -> Python name: the CamelCase string its class_/enum_ constructor loads, else the
    reviewed table of renames the bindings make (IBuilder is exposed as Builder, ...), else the same."""
    named = dict(CPP_RENAMES)
    for kind, value, (cpp, ctor) in seq:
        if kind == "name" and cpp and ctor and CLASS_NAME.fullmatch(value) and not MANGLED.match(value):
            named.setdefault(cpp, value)
    return named


def attribute(seq):
    """Group names by class and take argument names from adjacent docstrings."""
    py_name = python_class_names(seq)
    classes, args, current = {}, {}, None
    for i, (kind, value, (cpp, ctor)) in enumerate(seq):
        owner = py_name.get(cpp, cpp) if cpp else current
        if kind == "class":
            current = py_name.get(value, value)
            classes.setdefault(current, set())
            continue
        if kind == "name":
            if CLASS_NAME.fullmatch(value) and not MANGLED.match(value):
                current = value
                classes.setdefault(value, set())
            elif owner is not None and MEMBER_NAME.fullmatch(value) and not value.startswith("__") \
                    and not (cpp and ctor):
                classes.setdefault(owner, set()).add(value)
            continue
        doc = value[2] if kind == "docsym" else value
        names = ARG_LINE.findall(doc)
        if kind == "docsym":
            cls, member = value[0], value[1]
        else:  # an inline docstring belongs to the nearest member name (the one loaded next, else before)
            cls, member = owner, _nearest_member(seq, i)
        if cls and member and names and member != "descr":
            overloads = args.setdefault(f"{cls}.{member}", [])
            if names not in overloads:
                overloads.append(names)
    return {k: sorted(v) for k, v in sorted(classes.items())}, dict(sorted(args.items()))


def _nearest_member(seq, i):
    for j in (i + 1, i - 1, i + 2, i - 2):
        if 0 <= j < len(seq) and seq[j][0] == "name" and re.fullmatch(r"[a-z_][a-z0-9_]*", seq[j][1]):
            return seq[j][1]
    return None


def python_names(init_source: str):
    """Top-level names the package's __init__.py defines (nptype, __version__, ...)."""
    names, version = set(), None
    for node in ast.parse(init_source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
                    if t.id == "__version__" and isinstance(node.value, ast.Constant):
                        version = node.value.value
    return sorted(n for n in names if not n.startswith("_") or n == "__version__"), version


def extract(wheel: Path, version: str) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        so_name = next(n for n in zf.namelist() if re.fullmatch(r"tensorrt[^/]*/tensorrt[^/]*\.so", n))
        so = zf.read(so_name)
        init = zf.read(so_name.rsplit("/", 1)[0] + "/__init__.py").decode()
    classes, args = attribute(code_order_strings(Elf(so)))
    py_names, py_version = python_names(init)
    if py_version != version:
        raise SystemExit(f"trt_names: error: {wheel.name} says __version__ {py_version!r}, expected {version}")
    return {"format": "dynmm-edge/trt-names", "format_version": 1, "tensorrt_version": version,
            "wheel": wheel.name, "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "so": so_name, "so_sha256": hashlib.sha256(so).hexdigest(),
            "note": "classes[C] = names loaded by C's binding code (members, enum values, argument names): a "
                    "superset of C's attributes; args[C.m] = the ':arg' names of each documented overload of C.m, in order",
            "python_names": py_names, "classes": classes, "args": args}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: python scripts/trt_names.py --out tests/fixtures/trt_names")
    ap.add_argument("--wheels", type=Path, help="folder with the wheels already downloaded (skips pip)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for requirement, version, platform in WHEELS:
            if args.wheels:
                name = requirement.split("==")[0].replace("-", "_")
                wheel = next(iter(sorted(args.wheels.glob(f"{name}-{version}-*.whl"))), None)
                if wheel is None:
                    raise SystemExit(f"trt_names: error: no {name}-{version} wheel in {args.wheels}")
            else:
                wheel = download(requirement, platform, Path(tmp))
            fixture = extract(wheel, version)
            path = args.out / f"tensorrt-{version}.json"
            tmp_path = path.with_suffix(".json.partial")
            tmp_path.write_text(json.dumps(fixture, indent=0, sort_keys=True) + "\n")
            tmp_path.replace(path)
            members = sum(len(v) for v in fixture["classes"].values())
            print(f"{version:<11} {wheel.name}  sha256 {fixture['wheel_sha256']}\n"
                  f"{'':<11} {len(fixture['classes'])} classes, {members} class-scoped names, "
                  f"{len(fixture['args'])} documented signatures -> {path.relative_to(REPO)} "
                  f"({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
