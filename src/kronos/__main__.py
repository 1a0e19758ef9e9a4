"""``python -m kronos`` (also under ``torchrun -m kronos``) runs the command line."""

from kronos.cli import main

if __name__ == "__main__":
    main()
