"""The sandbox's one error type: an AWS-style service error with code, HTTP status and message.

Raised by validation, the backend and the protocol layer; the HTTP server turns it into a
response with the `x-amzn-ErrorType` header and a JSON body `{"message": ...}`.
"""

from __future__ import annotations

# HTTP statuses of the service's modeled exceptions (botocore model, imagebuilder 2019-12-02),
# plus the protocol-level codes the sandbox itself answers with. NotImplementedException (501) is
# the sandbox's own: an operation of the service it does not emulate. botocore retries neither it
# nor its status (legacy mode retries 500/502/503/504/509 and 429, standard mode 500/502/503/504
# and a list of throttling codes), so a test sees it at once, and no one mistakes it for a
# validation error of the service.
STATUS_BY_CODE: dict[str, int] = {
    "ServiceException": 500,
    "ServiceUnavailableException": 503,
    "ClientException": 400,
    "InvalidRequestException": 400,
    "InvalidParameterException": 400,
    "InvalidParameterValueException": 400,
    "InvalidParameterCombinationException": 400,
    "InvalidVersionNumberException": 400,
    "InvalidPaginationTokenException": 400,
    "IdempotentParameterMismatchException": 400,
    "ResourceAlreadyExistsException": 400,
    "ResourceInUseException": 400,
    "ResourceDependencyException": 400,
    "ResourceNotFoundException": 404,
    "ForbiddenException": 403,
    "AccessDeniedException": 403,
    "CallRateLimitExceededException": 429,
    "TooManyRequestsException": 429,
    "ServiceQuotaExceededException": 402,
    "DryRunOperationException": 412,
    "UnknownOperationException": 404,
    "SerializationException": 400,
    "NotImplementedException": 501,
}


class SandboxError(Exception):
    """An error the emulated service returns to its caller."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS_BY_CODE.get(code, 400)


def not_implemented(operation: str) -> SandboxError:
    """The error for an Image Builder operation that botocore's model defines and the sandbox does not emulate."""
    return SandboxError(
        "NotImplementedException",
        f"The imagesync sandbox does not implement the Image Builder operation {operation}. "
        "Implemented operations are listed in the README's sandbox section.",
    )
