"""Build the Docker image and use it as a user would: `claws --help`, then the image's default
command (the demo, written to a mounted folder). Prints one JSON line: the engine, build seconds,
image size, the demo's last lines and who owns what it wrote. With --rebuild, a second build after a
one-line change to a .py file (in a copy of the build context, the tree is not touched; that image
is removed again) says how long it took and how many of the first image's layers it reused.

Docker when a daemon answers (`docker info`), else buildah (`buildah bud --isolation chroot
--layers`, as root). Not part of the test run: the first build downloads several GB and the demo
runs C3D on the CPU for minutes. Progress goes to stderr.

    python docker/build_check.py [--rebuild] [--base-image IMAGE] [--torch-spec SPEC] [--user UID:GID]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The .py file the rebuild check changes by one line (in its copy of the context).
EDITED = "pipeline/cli.py"


def sh(*command: str, capture: bool = True) -> str:
    """Run a command, raising on failure; its stdout (or '' when it goes to stderr live)."""
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, check=True, text=True,
                          stdout=subprocess.PIPE if capture else sys.stderr)
    return done.stdout or ""


class Docker:
    name = "docker"

    def build(self, context: Path, tag: str, build_args: list[str]) -> None:
        sh("docker", "build", "-t", tag, *build_args, "-f", str(ROOT / "Dockerfile"), str(context),
           capture=False)

    def size(self, tag: str) -> int:
        return int(sh("docker", "image", "inspect", "-f", "{{.Size}}", tag))

    def layers(self, tag: str) -> list[tuple[str, int | None]]:
        """(digest, bytes) of each layer, base first; Docker's inspect gives no layer sizes."""
        digests = json.loads(sh("docker", "image", "inspect", "-f", "{{json .RootFS.Layers}}", tag))
        return [(digest, None) for digest in digests]

    def remove(self, tag: str) -> None:
        sh("docker", "rmi", tag)

    def run(self, tag: str, arguments: list[str], out: Path, user: str | None) -> str:
        """The image's entry point with `arguments` (none: its default command), `out` at /out."""
        user_args = ["--user", user] if user else []
        return sh("docker", "run", "--rm", *user_args, "-v", f"{out}:/out", tag, *arguments)


class Buildah:
    name = "buildah"

    def build(self, context: Path, tag: str, build_args: list[str]) -> None:
        sh("buildah", "bud", "--isolation", "chroot", "--layers", "-t", tag, *build_args,
           "-f", str(ROOT / "Dockerfile"), str(context), capture=False)

    def inspect(self, tag: str) -> dict:
        return json.loads(sh("buildah", "inspect", "--type", "image", tag))

    def size(self, tag: str) -> int:
        manifest = json.loads(self.inspect(tag)["Manifest"])
        return sum(layer["size"] for layer in manifest["layers"])

    def layers(self, tag: str) -> list[tuple[str, int | None]]:
        """(digest, bytes) of each layer, base first."""
        image = self.inspect(tag)
        sizes = [layer["size"] for layer in json.loads(image["Manifest"])["layers"]]
        return list(zip(image["OCIv1"]["rootfs"]["diff_ids"], sizes))

    def remove(self, tag: str) -> None:
        sh("buildah", "rmi", tag)

    def run(self, tag: str, arguments: list[str], out: Path, user: str | None) -> str:
        """As `docker run`: entry point plus `arguments` or the default command, the image's user
        and working folder unless `user` is given, `out` mounted at /out."""
        config = self.inspect(tag)["OCIv1"]["config"]
        command = [*config.get("Entrypoint", []), *(arguments or config.get("Cmd", []))]
        container = sh("buildah", "from", tag).strip()
        try:
            # buildah run would mount a fresh volume over /out, which the image declares, hiding
            # the -v folder; docker run's -v replaces the declared volume.
            sh("buildah", "config", "--volume", "/out-", container)
            user_args = ["--user", user] if user else []
            return sh("buildah", "run", "--isolation", "chroot", *user_args, "-v", f"{out}:/out",
                      container, "--", *command)
        finally:
            sh("buildah", "rm", container)


def engine() -> Docker | Buildah:
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return Docker()
    if shutil.which("buildah"):
        return Buildah()
    sys.exit("build_check: neither a Docker daemon (`docker info` failed) nor buildah: install one")


def context_copy(destination: Path) -> Path:
    """The build context as the engine sees it (top-level entries that .dockerignore lets in;
    the engine applies the file again), copied to `destination`."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for entry in ROOT.iterdir():
        kept = True
        for rule in rules:
            if fnmatch.fnmatch(entry.name, rule.lstrip("!")):
                kept = rule.startswith("!")
        if kept:
            copy = shutil.copytree if entry.is_dir() else shutil.copy2
            copy(entry, destination / entry.name)
    shutil.copy2(ROOT / ".dockerignore", destination / ".dockerignore")
    return destination


def timed_build(tool: Docker | Buildah, context: Path, tag: str, build_args: list[str]) -> float:
    start = time.perf_counter()
    tool.build(context, tag, build_args)
    return round(time.perf_counter() - start, 1)


def owners(folder: Path) -> list[str]:
    """Every uid:gid that owns something under `folder`."""
    return sorted({f"{p.stat().st_uid}:{p.stat().st_gid}" for p in folder.rglob("*")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default="claws", help="image name")
    parser.add_argument("--base-image", help="BASE_IMAGE build argument (Dockerfile default: python:3.11-slim)")
    parser.add_argument("--torch-spec", help="TORCH_SPEC build argument (Dockerfile default: the Makefile's pin)")
    parser.add_argument("--rebuild", action="store_true",
                        help=f"build again after a one-line change to {EDITED} and compare the layers")
    parser.add_argument("--user", help="run the container as UID:GID (default: the image's user)")
    args = parser.parse_args()

    tool = engine()
    build_args = [f"--build-arg={name}={value}" for name, value in
                  (("BASE_IMAGE", args.base_image), ("TORCH_SPEC", args.torch_spec)) if value]
    result: dict = {"engine": tool.name, "base_image": args.base_image or "python:3.11-slim",
                    "torch_spec": args.torch_spec or "Dockerfile default"}
    with tempfile.TemporaryDirectory() as work:
        result["build_s"] = timed_build(tool, ROOT, args.tag, build_args)
        if args.rebuild:
            context = context_copy(Path(work) / "context")
            with (context / EDITED).open("a") as edited:
                edited.write("# build_check: a one-line change\n")
            edited_tag = f"{args.tag}-build-check-edit"
            result["rebuild_s"] = timed_build(tool, context, edited_tag, build_args)
            first, second = tool.layers(args.tag), tool.layers(edited_tag)
            tool.remove(edited_tag)
            shared = next((i for i, (a, b) in enumerate(zip(first, second)) if a != b), len(second))
            result["rebuild_layers"] = len(second)
            result["rebuild_layers_reused"] = shared
            sizes = [size for _, size in second]
            if None not in sizes:
                result["rebuild_reused_gb"] = round(sum(sizes[:shared]) / 1e9, 2)
                result["rebuild_new_mb"] = round(sum(sizes[shared:]) / 1e6, 1)
        result["image_bytes"] = tool.size(args.tag)
        result["image_gb"] = round(result["image_bytes"] / 1e9, 2)

        out = Path(work) / "out"
        out.mkdir()
        out.chmod(0o777)  # /out is the working folder: open to the image's user, whatever its uid
        result["help_first_line"] = tool.run(args.tag, ["--help"], out, args.user).splitlines()[0]
        start = time.perf_counter()
        demo = tool.run(args.tag, [], out, args.user)
        result["demo_s"] = round(time.perf_counter() - start, 1)
        result["demo_last_lines"] = demo.strip().splitlines()[-3:]  # the AUC line, report, review page
        result["demo_files"] = sum(1 for p in out.rglob("*") if p.is_file())
        result["demo_owners"] = owners(out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
