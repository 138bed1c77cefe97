"""Parser of Phono3pyRtaCalculation: fc3.hdf5 and kappa-m*.hdf5 (retrieved temporarily) as SinglefileData, rta.json
as a Dict."""

from __future__ import annotations

import json
from pathlib import Path

from aiida import orm
from aiida.parsers import Parser

from aiida_llpam.calculations.rta_job import FAILED, REFUSED


def marked_lines(text: str, marker: str) -> list[str]:
    """The rest of every line of ``text`` that starts with ``marker``."""
    return [line[len(marker) :] for line in text.splitlines() if line.startswith(marker)]


class Phono3pyRtaParser(Parser):
    def parse(self, **kwargs):
        process = self.node.process_class
        repository = self.retrieved.base.repository
        names = repository.list_object_names()

        def text(name: str) -> str:
            return repository.get_object_content(name, mode="r") if name in names else ""

        fc3_file, kappa_file, summary_file = process.output_files(self.node.inputs.parameters.get_dict())
        temporary = kwargs.get("retrieved_temporary_folder")
        if temporary is None:  # e.g. parse_from_node on a stored job: the files were never kept
            return self.exit_codes.ERROR_NO_TEMPORARY_FOLDER
        temporary = Path(temporary)
        missing = [name for name in (fc3_file, kappa_file) if not (temporary / name).is_file()]
        missing += [summary_file] if summary_file not in names else []
        if missing:
            stdout = text(process._STDOUT_FILE)  # noqa: SLF001
            refused, failed = marked_lines(stdout, REFUSED), marked_lines(stdout, FAILED)
            if refused:
                return self.exit_codes.ERROR_INPUTS_REFUSED.format(message=refused[-1])
            if failed:
                return self.exit_codes.ERROR_PHONO3PY.format(message=failed[-1])
            stderr = text(process._STDERR_FILE).strip().splitlines()  # noqa: SLF001
            return self.exit_codes.ERROR_MISSING_OUTPUT.format(
                files=", ".join(missing), stderr=stderr[-1] if stderr else "(empty)"
            )
        try:
            summary = json.loads(text(summary_file))
        except ValueError as exc:
            return self.exit_codes.ERROR_READING_OUTPUT.format(message=f"{summary_file}: {exc}")
        for label, name in (("fc3", fc3_file), ("kappa", kappa_file)):
            with (temporary / name).open("rb") as handle:
                self.out(label, orm.SinglefileData(handle, filename=name))
        self.out("summary", orm.Dict(summary))
        return None
