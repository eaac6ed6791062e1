"""A reference standard fused from several annotators' files, and the annotators' agreement.

Modules: :mod:`~study.annotators.config` (the config's ``cohort.annotators``),
:mod:`~study.annotators.grades` (grade fusion rules), :mod:`~study.annotators.lesions`
(k-of-m lesion fusion), :mod:`~study.annotators.agreement` (Fleiss' and Cohen's kappa, lesion
F1, patient-bootstrap intervals), :mod:`~study.annotators.build` (reads the files, writes the
fused reference; the workflow step ``fuse_reference``).
"""
