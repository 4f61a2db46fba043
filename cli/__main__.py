"""`python -m cli ...`: the same as the `harambee` console script."""
from cli import main

main()
