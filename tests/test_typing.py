"""The task handle is typed: a type checker sees a task's parameters and its result type."""

from __future__ import annotations

from pathlib import Path

from mypy import api

SNIPPET = """
from qaio import App
app = App("memory://")

@app.task(retries=2)
def resize(path: str, width: int) -> str: return path

@app.task
async def mail(to: str) -> int: return 1

reveal_type(resize.enqueue(path="a", width=1).result())
reveal_type(mail.enqueue(to="x").result())
resize.enqueue(path="a", width="x")
"""


def test_mypy_sees_parameters_and_result_types(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    out, _, status = api.run([str(source), "--no-incremental", "--cache-dir", str(tmp_path / "cache")])
    assert 'Revealed type is "builtins.str"' in out or 'Revealed type is "str"' in out, out
    assert 'Revealed type is "builtins.int"' in out or 'Revealed type is "int"' in out, out
    assert 'Argument "width" to "enqueue" of "Task" has incompatible type "str"; expected "int"' in out, out
    assert status == 1
