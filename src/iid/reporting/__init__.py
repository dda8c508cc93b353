"""Reports of sweeps: an experiment's table beside the paper's numbers, the robustness table, and the
figures every image grid of the suite shares.

Imports run one way, from the top down (a module imports only those below it):

    write          report(cfg), the body of `python -m iid.report`
    table_plot     the table's figure            robustness    Table 4 from perturbed evaluations
    tables         sweep folder -> jobs -> cells, Markdown, CSV
    stats          bootstrap intervals over test videos        figures    headless pyplot, grids

This file imports nothing, so `from iid.reporting.figures import ...` (augment, models) stays light.
"""
