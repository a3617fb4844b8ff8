"""MediaPipe's trained .tflite models (the mediapipe 0.10.14 wheel ships 14 under mediapipe/modules/).

`make mediapipe-models` downloads the wheel (PyPI, --no-deps) and runs this file to unpack only
the .tflite files into build/mediapipe/; tests take them with `mediapipe_model(name)`.

    python tests/mediapipe_models.py WHEEL_DIR OUT_DIR
"""

import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "build" / "mediapipe"
WHEEL = "mediapipe-0.10.14-*.whl"


def mediapipe_model(name: str) -> Path:
    """build/mediapipe/NAME.tflite; fails the test (with how to fetch it) when it is missing."""
    path = MODELS / f"{name}.tflite"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make mediapipe-models` (downloads the mediapipe 0.10.14 wheel "
                    "from PyPI and unpacks its .tflite models)")
    return path


def unpack(wheel_dir: Path, out: Path) -> list[Path]:
    wheels = sorted(wheel_dir.glob(WHEEL))
    if not wheels:
        raise SystemExit(f"no {WHEEL} in {wheel_dir}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for member in wheel.namelist():
            if member.startswith("mediapipe/modules/") and member.endswith(".tflite"):
                target = out / Path(member).name
                target.write_bytes(wheel.read(member))
                written.append(target)
    return written


if __name__ == "__main__":
    files = unpack(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"unpacked {len(files)} MediaPipe .tflite models into {sys.argv[2]}")
