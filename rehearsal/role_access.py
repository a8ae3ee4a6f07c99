"""Who is calling, and may they: the rehearsal's own services judge requests as IAM would.

moto judges the requests it serves; the local SageMaker is the rehearsal's own, so it asks this module.
Each function's and service's role session was issued by moto (`MotoServer.assume_role`); its access key
id names the role, and the role's inline policies are the program's documents, conditions and all, judged
by `rehearsal.iam_policy` (the evaluator the IAM-exactness tests use).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rehearsal.iam_policy import Policy


@dataclass
class RoleAccess:
    # Role name -> its inline policy documents.
    policies: Mapping[str, Sequence[str]]
    # Access key id of a role session -> the role's name.
    sessions: dict[str, str] = field(default_factory=dict)
    # Access key ids that act with every permission (the deployer running the rehearsal).
    administrators: set[str] = field(default_factory=set)

    def add_session(self, access_key_id: str, role_name: str) -> None:
        self.sessions[access_key_id] = role_name

    def authorize(
        self,
        access_key_id: str,
        action: str,
        resources: Sequence[str],
        context: Mapping[str, str] | None = None,
    ) -> str | None:
        """None if the caller may perform `action` on every one of `resources`, else why not, worded as
        AWS words an AccessDenied."""
        if access_key_id in self.administrators:
            return None
        role = self.sessions.get(access_key_id)
        if role is None:
            return f"The security token included in the request is invalid ({access_key_id})"
        # A role's identity policies are judged together: an explicit Deny in any wins, else any Allow.
        policy = Policy(tuple(s for d in self.policies.get(role, ()) for s in Policy.parse(d).statements))
        request_context = dict(context or {})
        if action == "iam:PassRole":
            # The service the role is passed to is the one asking: the local SageMaker.
            request_context.setdefault("iam:PassedToService", "sagemaker.amazonaws.com")
        for resource in resources or ["*"]:
            if not policy.allows(action, resource, request_context):
                return (
                    f"User: arn:aws:sts::assumed-role/{role} is not authorized to perform: {action} on "
                    f"resource: {resource} because no identity-based policy allows the {action} action"
                )
        return None
