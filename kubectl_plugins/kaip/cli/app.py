"""Running a plugin: errors to one line and a documented exit code, and kubectl's shell completion."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence

import click
from click.shell_completion import ShellComplete

from kaip.errors import ExitCode, KaipError

# Cobra's ShellCompDirective values, which kubectl reads from kubectl_complete-* executables.
DIRECTIVE_DEFAULT = 0
DIRECTIVE_NO_FILE_COMP = 4
# A plugin run allocates its answers in bulk: tens of thousands of dicts per page of a list, none of
# them in a reference cycle. With the default threshold (700) the cycle collector ran hundreds of
# times over them, 20% of a `jobs list` over 1,000 jobs. Cycles are still collected, just in bigger
# batches, which keeps long `--watch` runs bounded.
GC_THRESHOLD = (100_000, 20, 20)


def run(cli: click.Command, args: Sequence[str] | None = None, prog_name: str | None = None) -> int:
    """Run ``cli`` and return its exit code; every error ends as one line on stderr."""
    try:
        rv = cli.main(
            args=list(args) if args is not None else None, prog_name=prog_name, standalone_mode=False
        )
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a group given no command: its help, as kubectl prints it
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"error: {click_error_line(exc)}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KaipError as exc:
        click.echo(f"error: {one_line(str(exc))}", err=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `| head`): not an error for a listing tool.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    return int(rv) if isinstance(rv, int) else ExitCode.OK


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of blanks as single spaces: an error is one line."""
    return " ".join(text.split())


def click_error_line(exc: click.ClickException) -> str:
    """click's error as one line, the "Try ... for help" hint folded in and the usage banner left out.

    click prints ``Usage: ...``, the hint and ``Error: ...`` on three lines; a script reading stderr
    (and a person scanning it) wants the error and where to read more, as the rest of the suite says it.
    """
    message = one_line(exc.format_message()).removesuffix(".")
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    if ctx is None or ctx.command.get_help_option(ctx) is None:
        return message
    help_flag = max(ctx.command.get_help_option_names(ctx), key=len)
    return f"{message} (see '{ctx.command_path} {help_flag}')"


def plugin_main(cli: click.Command, prog_name: str) -> None:
    gc.freeze()  # what start-up made lives as long as the process: never scan it again
    gc.set_threshold(*GC_THRESHOLD)
    sys.exit(run(cli, prog_name=prog_name))


def completions(cli: click.Command, args: Sequence[str], prog_name: str) -> list[str]:
    """Lines kubectl expects from ``kubectl_complete-<plugin> ARGS... TO_COMPLETE``."""
    words = list(args)
    incomplete = words.pop() if words else ""
    comp = ShellComplete(cli, {}, prog_name, "_KAIP_COMPLETE")
    items = comp.get_completions(words, incomplete)
    lines = [f"{i.value}\t{i.help}" if i.help else str(i.value) for i in items if i.type == "plain"]
    wants_files = any(i.type in ("file", "dir") for i in items)
    lines.append(f":{DIRECTIVE_DEFAULT if wants_files else DIRECTIVE_NO_FILE_COMP}")
    return lines


def complete_main(cli: click.Command, prog_name: str) -> None:
    """kubectl's ``kubectl_complete-<plugin>``: whatever goes wrong, nothing reaches the shell."""
    try:
        lines = completions(cli, sys.argv[1:], prog_name)
    except Exception:
        lines = [f":{DIRECTIVE_NO_FILE_COMP}"]
    for line in lines:
        click.echo(line)
    sys.exit(0)
