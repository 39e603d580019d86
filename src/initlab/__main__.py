"""``python -m initlab ...``: the command line (also what ``torchrun -m initlab`` runs)."""

from initlab.cli import main

if __name__ == "__main__":
    main(prog_name="initlab")
