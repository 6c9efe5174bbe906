# pragma version ~=0.4.0
"""
@title TemplateStore
@notice Agreement templates, proposed, approved and revoked by the governance
        account. Only an approved template may create agreements.
        States: Uninitialized 0, Proposed 1, Approved 2, Revoked 3 (final).
"""

UNINITIALIZED: constant(uint8) = 0
PROPOSED: constant(uint8) = 1
APPROVED: constant(uint8) = 2
REVOKED: constant(uint8) = 3


event TemplateProposed:
    template: indexed(address)


event TemplateApproved:
    template: indexed(address)


event TemplateRevoked:
    template: indexed(address)


event GovernanceTransferred:
    previousGovernance: indexed(address)
    newGovernance: indexed(address)


governance: public(address)
templateState: public(HashMap[address, uint8])


@deploy
def __init__():
    self.governance = msg.sender


@internal
@view
def _only_governance():
    assert msg.sender == self.governance, "TemplateStore: only governance"


@external
def propose(template: address):
    self._only_governance()
    assert template != empty(address), "TemplateStore: zero template address"
    assert self.templateState[template] == UNINITIALIZED, "TemplateStore: template already known"
    self.templateState[template] = PROPOSED
    log TemplateProposed(template=template)


@external
def approve(template: address):
    self._only_governance()
    assert self.templateState[template] == PROPOSED, "TemplateStore: template not proposed"
    self.templateState[template] = APPROVED
    log TemplateApproved(template=template)


@external
def revoke(template: address):
    self._only_governance()
    assert self.templateState[template] == APPROVED, "TemplateStore: template not approved"
    self.templateState[template] = REVOKED
    log TemplateRevoked(template=template)


@external
def transferGovernance(newGovernance: address):
    self._only_governance()
    assert newGovernance != empty(address), "TemplateStore: zero governance address"
    log GovernanceTransferred(previousGovernance=self.governance, newGovernance=newGovernance)
    self.governance = newGovernance


@external
@view
def isApproved(template: address) -> bool:
    return self.templateState[template] == APPROVED
