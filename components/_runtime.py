"""The one place for how greenkfp components run: image, kfp install settings, version.

Every component's ``base_image`` is the library's own image, built from the repo's
``Dockerfile`` and tagged with the library version, so a cluster run installs nothing at start-up
(``install_kfp_package=False``).

A cluster without that image can run *portable* YAML instead (``greenkfp compile --portable``),
on a stock ``python:3.11-slim`` image whose start-up pip-installs what it needs (so it needs
PyPI, or your index):

* by default each component embeds this package's code (kfp's ``embedded_artifact_path``, put
  on ``sys.path`` at run time) and installs the few runtime dependencies. The embedded carbon
  data (2.6 MB) is left out: kfp passes the embedded archive as one container argument, and
  Linux caps one argument at 128 KiB. The ``embedded`` provider then reports itself
  unconfigured, and the gate's fallback chain and failure policy take over;
* with ``GREENKFP_PACKAGE_SPEC`` set (``--package-spec``: a pip requirement such as a wheel URL
  or ``greenkfp==0.1.0`` on your index), each component pip-installs greenkfp itself, data
  included, and embeds nothing.

Standard library only at import: this module is imported by every component definition.
"""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
from pathlib import Path

__version__ = "0.1.0"

#: Registry of the component image; override at compile time with ``GREENKFP_IMAGE``.
IMAGE_REPOSITORY = "ghcr.io/greenkfp/greenkfp"
PORTABLE_BASE_IMAGE = "python:3.11-slim"
#: What portable components pip-install at start-up: every component needs BASE_PACKAGES,
#: and each names the extras its core imports (keep the ranges in step with pyproject.toml).
PORTABLE_REQUIREMENTS = {
    "kfp": "kfp~=2.17.0",
    "numpy": "numpy>=1.26,<3",
    "httpx": "httpx>=0.27,<1",
    "tenacity": "tenacity>=8.2,<10",
    "pandas": "pandas>=2.1,<4",
    "pyarrow": "pyarrow>=15,<30",
    "scikit-learn": "scikit-learn>=1.5,<2",
    "skops": "skops>=0.10,<1",
    "codecarbon": "codecarbon~=3.3.0",
    "onnx": "onnx>=1.16,<2",
    "onnxruntime": "onnxruntime>=1.19,<2",
    "skl2onnx": "skl2onnx>=1.17,<2",
    "onnxconverter-common": "onnxconverter-common>=1.14,<2",
    "psutil": "psutil>=5.9",
    "matplotlib": "matplotlib>=3.8,<4",
    "kubernetes-validate": "kubernetes-validate==1.37.0",
}
BASE_PACKAGES = ("kfp", "numpy", "httpx", "tenacity")
ENV_IMAGE = "GREENKFP_IMAGE"
ENV_PORTABLE = "GREENKFP_PORTABLE"
ENV_PACKAGE_SPEC = "GREENKFP_PACKAGE_SPEC"


def component_image() -> str:
    return os.environ.get(ENV_IMAGE) or f"{IMAGE_REPOSITORY}:{__version__}"


def portable_enabled() -> bool:
    return os.environ.get(ENV_PORTABLE, "").lower() in {"1", "true", "yes"}


_portable_trees: dict[tuple[str, ...], Path] = {}


def _compact_source(text: str) -> str:
    """Python source without comments and docstrings (an exact AST round trip otherwise): the
    embedded copy only runs, and every byte counts against the kernel's 128 KiB argument limit."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


def _portable_source_tree(subpackages: tuple[str, ...], modules: tuple[str, ...] | None = None) -> Path:
    """A directory holding ``greenkfp/components`` with only ``subpackages`` and the package's
    top-level modules (``__init__``, this one, ``_files`` ...), compacted, to embed in a
    component: the whole package would pass the 128 KiB limit on one container argument. The
    KFP adapters (``component.py``) and the embedded carbon data are left out. ``modules``
    (paths relative to ``greenkfp/components``, :func:`required_modules`): of the subpackages'
    Python modules, only these are embedded (None: all); their data files (and Python files
    in folders that are not packages, such as Alembic's migrations) always are."""
    key = (tuple(sorted(set(subpackages))), None if modules is None else tuple(sorted(set(modules))))
    if key not in _portable_trees:
        root = Path(tempfile.mkdtemp(prefix="greenkfp-embed-"))
        here = Path(__file__).resolve().parent
        target = root / "greenkfp" / "components"
        sources = list(here.glob("*.py")) + [p for name in key[0] for p in (here / name).rglob("*")
                                             if p.is_file() and "__pycache__" not in p.parts]
        wanted = None if modules is None else set(modules)
        for source in sources:
            if source.name == "component.py" or source.suffix in (".npz", ".pyc"):
                continue
            if (wanted is not None and source.suffix == ".py" and source.parent != here
                    and (source.parent / "__init__.py").is_file()
                    and source.relative_to(here).as_posix() not in wanted):
                continue  # a module of an embedded subpackage that nothing the component runs imports
            destination = target / source.relative_to(here)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix == ".py":
                destination.write_text(_compact_source(source.read_text(encoding="utf-8")), encoding="utf-8")
            else:  # the data notice (attribution) and other small files travel as they are
                shutil.copy2(source, destination)
        _portable_trees[key] = root
    return _portable_trees[key]


def _imported_subpackages(tree: ast.AST, package: tuple[str, ...]) -> set[str]:
    """The greenkfp.components subpackages that the imports in ``tree`` name, anywhere in it
    (function-level imports included). ``package``: the module's own package below
    ``greenkfp.components`` (for relative imports)."""
    here = Path(__file__).resolve().parent
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)]) if node.level - 1 <= len(package) else []
                base = ["greenkfp", "components", *base]
            else:
                base = []
            module = base + (node.module.split(".") if node.module else [])
            targets = [module + [alias.name] for alias in node.names]
        else:
            continue
        for parts in targets:
            if parts[:2] == ["greenkfp", "components"] and len(parts) > 2 and (here / parts[2]).is_dir():
                found.add(parts[2])
    return found


def required_subpackages(func) -> tuple[str, ...]:
    """Every greenkfp subpackage a component body needs: those its imports name, and those
    their modules import in turn. Derived from the code, so a new import (even inside a
    function) can never be left out of a portable build."""
    import inspect
    import textwrap

    here = Path(__file__).resolve().parent
    pending = _imported_subpackages(ast.parse(textwrap.dedent(inspect.getsource(func))), ())
    # the top-level modules (this one, _files, records ...) are always embedded; what they import counts too
    for module in here.glob("*.py"):
        pending |= _imported_subpackages(ast.parse(module.read_text(encoding="utf-8")), ())
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        seen.add(name)
        for path in (here / name).rglob("*.py"):
            if path.name == "component.py":  # KFP adapters are not embedded (see _portable_source_tree)
                continue
            package = path.relative_to(here).parent.parts
            pending |= _imported_subpackages(ast.parse(path.read_text(encoding="utf-8")), package) - seen
    return tuple(sorted(seen))


def _imported_modules(tree: ast.AST, package: tuple[str, ...]) -> set[str]:
    """The greenkfp.components modules (paths relative to the package, ``governance/client.py``)
    that the imports in ``tree`` load, anywhere in it, with the ``__init__.py`` of every package
    on their way. ``package``: the module's own package below ``greenkfp.components``."""
    here = Path(__file__).resolve().parent
    found: set[str] = set()

    def add(parts: list[str]) -> bool:
        for depth in range(1, len(parts)):  # the packages on the way are imported first
            init = Path(*parts[:depth], "__init__.py")
            if (here / init).is_file():
                found.add(init.as_posix())
        for candidate in (Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")) if parts else ():
            if (here / candidate).is_file():
                found.add(candidate.as_posix())
                return True
        return False

    for node in _walk_eager(tree):
        if isinstance(node, ast.Import):
            targets = [(alias.name.split("."), None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(package):
                    continue
                base = ["greenkfp", "components", *package[: len(package) - (node.level - 1)]]
            else:
                base = []
            targets = [(base + (node.module.split(".") if node.module else []), [a.name for a in node.names])]
        else:
            continue
        for parts, names in targets:
            if parts[:2] != ["greenkfp", "components"]:
                continue
            add(parts[2:])
            eager = None
            for name in names or ():  # ``from package import module``
                if (here / Path(*parts[2:], name)).with_suffix(".py").is_file() or \
                        (here / Path(*parts[2:], name, "__init__.py")).is_file():
                    add([*parts[2:], name])
                    continue
                init = here / Path(*parts[2:], "__init__.py")
                if init.is_file():  # a name the package exports lazily: what its __getattr__ imports
                    if eager is None:
                        eager = _eager_names(ast.parse(init.read_text(encoding="utf-8")))
                    if name not in eager[0] and eager[1] is not None:
                        found |= _imported_modules(ast.Module(body=eager[1].body, type_ignores=[]),
                                                   tuple(parts[2:]))
            if names is None and len(parts) > 2 and (here / Path(*parts[2:], "__init__.py")).is_file():
                # ``import package``: any attribute may be used, lazy ones included
                lazy_function = _lazy_export_function(
                    ast.parse((here / Path(*parts[2:], "__init__.py")).read_text(encoding="utf-8")))
                if lazy_function is not None:
                    found |= _imported_modules(ast.Module(body=lazy_function.body, type_ignores=[]),
                                               tuple(parts[2:]))
    return found


def _walk_eager(tree: ast.AST):
    """``ast.walk`` without the module's lazy ``__getattr__`` (see :func:`_lazy_export_function`)."""
    lazy = _lazy_export_function(tree)
    todo = [tree]
    while todo:
        node = todo.pop()
        if node is lazy:
            continue
        todo.extend(ast.iter_child_nodes(node))
        yield node


def _lazy_export_function(tree: ast.AST):
    """A module's own ``def __getattr__`` (PEP 562 lazy exports), or None. Its imports run only
    when one of those names is used, so they count only for an importer that names one."""
    for node in getattr(tree, "body", ()):
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return node
    return None


def _eager_names(tree: ast.AST) -> tuple[set[str], ast.FunctionDef | None]:
    """The names a package's ``__init__`` binds at import, and its lazy ``__getattr__`` (or None)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    names.discard("__getattr__")
    return names, _lazy_export_function(tree)


def required_modules(func) -> tuple[str, ...]:
    """Every greenkfp.components module a component body runs: those its imports load, and
    those their modules import in turn (paths relative to the package). A portable build embeds
    only these of its subpackages' modules (the governance package alone would pass the 128 KiB
    argument limit)."""
    import inspect
    import textwrap

    here = Path(__file__).resolve().parent
    pending = _imported_modules(ast.parse(textwrap.dedent(inspect.getsource(func))), ())
    pending |= {p.name for p in here.glob("*.py")}  # the top-level modules are always embedded
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        seen.add(name)
        path = here / name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        pending |= _imported_modules(tree, Path(name).parent.parts) - seen
        if _imports_by_name(tree):  # modules loaded by name (a registry of providers): its whole folder
            pending |= {p.relative_to(here).as_posix() for p in path.parent.glob("*.py")
                        if p.name != "component.py"} - seen
    return tuple(sorted(seen))


def _imports_by_name(tree: ast.AST) -> bool:
    """Whether the code calls ``importlib.import_module`` or ``__import__`` (so its imports cannot be read)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "import_module") or \
                    (isinstance(func, ast.Name) and func.id in ("import_module", "__import__")):
                return True
    return False


def component(*needs: str):
    """``kfp.dsl.component`` with greenkfp's runtime settings: ``needs`` names the packages
    (keys of :data:`PORTABLE_REQUIREMENTS`) the component's core imports beyond
    :data:`BASE_PACKAGES`; the greenkfp subpackages to embed are derived from its imports."""

    def decorate(func):
        from kfp import dsl

        return dsl.component(func, **component_options(*needs, subpackages=required_subpackages(func),
                                                       modules=required_modules(func)))

    return decorate


_SHELL_UNSAFE = set("\"'`$\\;|&<>(){}\n\r\t*?!#")


def check_package_spec(spec: str) -> str:
    """A pip requirement for ``GREENKFP_PACKAGE_SPEC`` / ``--package-spec``: a name with a version
    (``greenkfp==0.1.0``), or ``greenkfp @ <https URL or path of a wheel>``. kfp puts it inside a
    shell command in every pod, so quotes, ``$``, backticks and the like are refused outright."""
    from packaging.requirements import InvalidRequirement, Requirement

    text = str(spec).strip()
    unsafe = sorted(_SHELL_UNSAFE.intersection(text))
    if not text or unsafe:
        raise ValueError(f"--package-spec must be a pip requirement such as greenkfp==0.1.0 or 'greenkfp @ https://.../"
                         f"greenkfp-0.1.0-py3-none-any.whl' without shell characters {''.join(unsafe)!r}; "
                         f"got {text[:120]!r}")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"--package-spec is not a pip requirement ({exc}); got {text[:120]!r}") from None
    if requirement.url and "@" in requirement.url.split("//", 1)[-1].split("/", 1)[0]:
        raise ValueError("--package-spec must not carry credentials (user:password@): it is written into every "
                         "component's YAML; serve the wheel from an index or URL that needs none")
    if requirement.name.lower() != "greenkfp":
        raise ValueError(f"--package-spec must install greenkfp, got a requirement for {requirement.name!r}")
    return text


def component_options(*needs: str, subpackages: tuple[str, ...] = (), modules: tuple[str, ...] | None = None) -> dict:
    """Keyword arguments for ``kfp.dsl.component`` under the current runtime settings.

    ``needs`` names the packages (keys of :data:`PORTABLE_REQUIREMENTS`) the component's core
    imports beyond :data:`BASE_PACKAGES`; ``subpackages`` the greenkfp subpackages it imports.
    Only portable builds use them: they install the one and embed the other.
    """
    unknown = sorted(set(needs) - set(PORTABLE_REQUIREMENTS))
    if unknown:
        raise ValueError(f"unknown component needs {unknown}; known: {', '.join(PORTABLE_REQUIREMENTS)}")
    if portable_enabled() and os.environ.get(ENV_PACKAGE_SPEC):
        return {
            "base_image": PORTABLE_BASE_IMAGE,
            "packages_to_install": [check_package_spec(os.environ[ENV_PACKAGE_SPEC])],
            "install_kfp_package": False,  # greenkfp depends on kfp
        }
    if portable_enabled():
        return {
            "base_image": PORTABLE_BASE_IMAGE,
            "packages_to_install": [PORTABLE_REQUIREMENTS[n] for n in dict.fromkeys((*BASE_PACKAGES, *needs))],
            "install_kfp_package": False,
            "embedded_artifact_path": str(_portable_source_tree(subpackages, modules)),
        }
    return {"base_image": component_image(), "install_kfp_package": False}
