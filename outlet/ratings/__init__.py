"""好差评: service ratings at every stage and the closed loop for bad ratings (差评整改).

Modules: ``models`` (tables), ``rules`` (levels, reasons, form validation, the policy),
``submit`` (the three channels: QR code, 评价器, teller's call page), ``workorders``
(回访 → 整改 → 反馈 → 销号, escalation), ``appeals`` (申诉复核). The published indicators
are the ratings family of :mod:`outlet.figures` (``outlet/figures/ratings.py``). Sources: 国办发〔2019〕51号, GB/T 39734/39735-2020,
鲁政办发〔2020〕10号; DOMAIN.md "Ratings".
"""
