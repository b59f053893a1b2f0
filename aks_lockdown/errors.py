"""The tool's error types and the exit status each maps to.

Every error the operator sees is one line. Input errors (config, flags, state file) exit 2 and are
raised before anything is sent to Azure.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class LockdownError(Exception):
    """Base of every error the CLI turns into a one-line message and an exit status."""

    exit_code: int = EXIT_FAILED

    def one_line(self) -> str:
        return " ".join(str(self).split())


class InputError(LockdownError):
    """Bad config, flags or state: refused before any network call."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """A config file that does not validate. Names the file, the field and, where useful, the value."""

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file = file
        self.field = field
        self.message = message
        super().__init__(f"{file}: {field}: {message}" if field else f"{file}: {message}")


class StateError(InputError):
    """A state file that is corrupt, of an unknown schema version, or of another deployment."""


class LockHeldError(InputError):
    """Another run holds the deployment's lock; names the holder."""


class AzureOperationError(LockdownError):
    """Azure refused or failed an operation that retrying will not fix."""

    def __init__(
        self,
        *,
        step: str,
        resource_id: str,
        code: str,
        message: str,
        resume_command: str = "",
    ) -> None:
        self.step = step
        self.resource_id = resource_id
        self.code = code
        self.message = message
        self.resume_command = resume_command
        text = f"step {step}: {code}: {message} (resource {resource_id})"
        if resume_command:
            text += f"; fix the cause, then resume with: {resume_command}"
        super().__init__(text)


class Interrupted(LockdownError):
    """The operator pressed Ctrl-C; state is recorded and the Azure operation carries on."""

    exit_code = EXIT_INTERRUPTED
