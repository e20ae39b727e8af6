"""`cos-matting samples [DIR]`: write the sample clips the demo uses, to upload yourself.

Generated here (nothing is downloaded): person.mp4 (one person, close up: what the local
HumanSeg handles), green_screen.mp4 (for GreenScreenSeg / SolidColorSeg) and background.png
(for Combination), 320x240, 3 s, H.264.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.errors import require_engine, usage
from cli.ui import size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("samples", help="write sample clips (a person, a green screen) to upload",
                                   description=__doc__.split("\n\n", 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="samples", metavar="DIR",
                        help="where to write them (default: %(default)s; created if missing)")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_engine("samples")
    from localcloud.matting.samples import make_samples

    folder = Path(args.folder)
    if folder.exists() and not folder.is_dir():
        raise usage(f"DIR {folder}", "is a file", "give a folder")
    clash = [n for n in ("person.mp4", "green_screen.mp4", "background.png") if (folder / n).exists()]
    if clash:
        raise usage(f"DIR {folder}", f"{clash[0]} is already there (never overwritten)", "give another folder")
    made = sorted(make_samples(str(folder)).items())
    if getattr(args, "json", False):
        from cli.ui import dump_json

        print(dump_json([{"name": name, "file": str(path), "bytes": Path(path).stat().st_size} for name, path in made]))
        return 0
    for name, path in made:
        print(f"{path} ({size(Path(path).stat().st_size)}): {name.replace('_', ' ')}")
    return 0
