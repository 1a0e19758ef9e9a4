"""Helper run by ``tests/training/test_distributed.py`` under torchrun (not a test module itself).

Trains through the public API, then writes this rank's final weights and the list of windows it
read (split, first row), so the test can check from outside that ranks agree and draw differently.

    torchrun --nproc_per_node=2 tests/ddp_worker.py OUT_DIR KIND CONFIG [KEY=VALUE ...]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from kronos.training import train
from kronos.training import windows as dataset


def main() -> None:
    out, kind, config, overrides = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    rank = int(os.environ["RANK"])
    seen: list[list] = []
    original = dataset.WindowDataset.__getitem__

    def spy(self: dataset.WindowDataset, index: int) -> dict:
        item = original(self, index)
        seen.append([self.split, int(item["row"])])
        return item

    dataset.WindowDataset.__getitem__ = spy  # type: ignore[method-assign]
    result = train(kind, config, overrides=overrides)  # type: ignore[arg-type]
    assert result.model is not None
    save_file(
        {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}, str(out / f"rank{rank}.safetensors")
    )
    (out / f"rank{rank}_windows.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
