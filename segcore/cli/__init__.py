"""segloop-cli: batch work and scripting on top of segcore (predict, train, eval, versions, weights).

Every subcommand has --help with examples. Masks are PNG files named like their images
(<stem>.png): binary masks 0/255, multi-class masks palette/indexed PNGs of class indices.

Output names (predict): <stem>.png, stem = the file name without its last suffix. When two
images share a stem (a.jpg and a.png), the first in name order keeps it and every other one
uses its full file name (a.jpg -> a.png, a.png -> a.png.png): the rule project masks follow
(segcore._index), so no output overwrites another.

Failures a user can meet (missing or unreadable folders, read-only or full disks, a damaged
checkpoint, out of memory, bad arguments) end with one line ``segloop-cli COMMAND: reason`` and
exit code 1 (2 for argument errors), never a traceback.
"""

# Layout: one module per subcommand (predict, train, eval, versions, simulate, export = export and
# import, weights), each with ``add_parser(sub)``; ``common`` holds what they share; ``parser``
# builds the parser and runs ``main``; ``__main__`` serves ``python -m segcore.cli`` and torchrun.

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
