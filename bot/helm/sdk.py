"""The Helm SDK: `helm-python-sdk` (Helm v4's Go SDK through a C ABI), the one module of
flux-review that imports it. It runs only in the renderer's child process (`child.py`).

The chart is handed over as a `.tgz` built in memory (`Chart.load_archive`): nothing is
written to disk, and `.Files` sees the chart's files only. The render itself is
`helm_render` of the library's C ABI, which `helm_python` binds but whose Python wrapper
(`Chart.render`) does not pass `kube_version` and `api_versions` (documented keys of the
C ABI's options since 0.2.0): those set `.Capabilities` as helm-controller's discovery
of the cluster does, so the render goes through the binding's `_native.call_string`.
The library renders offline: `lookup` returns nothing, DNS lookups are off.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

import helm_python
from helm_python import _native

# A Helm error message can repeat a recursive `include` chain ten thousand times: its
# head names the template rendered, its tail the innermost action.
MAX_MESSAGE = 64 * 1024

_PROBE = {
    "Chart.yaml": b"apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    "templates/v.yaml": b"{{ .Capabilities.KubeVersion.Version }}",
}


def archive(files: Mapping[str, bytes]) -> bytes:
    """The chart as a `.tgz` in memory, as `helm package` lays it out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(f"chart/{path}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0)


def _bounded(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    half = MAX_MESSAGE // 2
    return message[:half] + "\n…\n" + message[-half:]


def _render_raw(chart: helm_python.Chart, values_json: str, options: dict[str, Any]) -> str:
    return _native.call_string("helm_render", chart._raw(), values_json, json.dumps(options))


def versions() -> dict[str, str]:
    """The Helm and library versions, and the Kubernetes version renders default to."""
    with helm_python.Chart.load_archive(archive(_PROBE)) as chart:
        rendered = json.loads(_render_raw(chart, "{}", {}))
    return {
        "helm": helm_python.helm_sdk_version(),
        "library": helm_python.helm_c_version(),
        "binding": helm_python.__version__,
        "kube_version": rendered.get("probe/templates/v.yaml", "").strip(),
    }


def render(
    files: Mapping[str, bytes], values_json: str, options: dict[str, Any], max_output: int
) -> dict[str, Any]:
    """`{"ok": True, "manifests": {...}, "crds": {...}}`, or the SDK's error class name
    and message."""
    try:
        with helm_python.Chart.load_archive(archive(files)) as chart:
            raw = _render_raw(chart, values_json, options)
            if len(raw) > max_output:
                return {"ok": False, "limit": "output"}
            manifests = json.loads(raw)
            # After the render, the chart holds only the subcharts its values enable.
            crds = {c.get("filename") or c.get("name", ""): c.get("data", "") for c in chart.crds}
    except helm_python.HelmError as exc:
        return {"ok": False, "error_type": type(exc).__name__, "message": _bounded(str(exc))}
    return {"ok": True, "manifests": manifests, "crds": crds}
