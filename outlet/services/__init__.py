"""Service records (服务记录): 咨询 / 帮办 / 陪办 / 代办 and 上门办 by block agents.

Most of what an outlet does is not a case. Each service here is a first-class record,
every step a delegated action (``service.*``, ``visit.*``) authorized by the grant's scope
for the kind (咨询 → 咨询, 帮办 and 陪办 → 帮办, 代办 → 代办) and audited in the same
transaction as the change (``partners.delegation.delegated_action``).
"""
