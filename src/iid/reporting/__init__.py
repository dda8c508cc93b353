"""Reports of sweeps: an experiment's table beside the paper's numbers, the robustness table, the
reproduction scorecard over many sweeps, and the figures every image grid of the suite shares.

Imports run one way, from the top down (a module imports only those below it):

    scorecard_write  mode=scorecard: every comparison of the papers, with a verdict
    scorecard_plot   its forest plot           scorecard   comparisons -> paired differences, verdicts
    write          report(cfg), the body of `python -m iid.report`
    table_plot     the table's figure            robustness    Table 4 from perturbed evaluations
    tables         sweep folder -> jobs -> cells, Markdown, CSV
    stats          bootstrap intervals over test videos        figures    headless pyplot, grids

This file imports nothing, so `from iid.reporting.figures import ...` (augment, models) stays light.
"""
