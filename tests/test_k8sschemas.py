"""The vendored Kubernetes schemas and the validator of built objects: what server-side apply
refuses is reported on its path with a short message, what the API server accepts is not."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bot.analysis import k8sschemas
from bot.analysis.k8sschemas import ProblemKind, validate
from bot.analysis.k8sschemas.validate import validator_for

ROOT = Path(__file__).resolve().parent.parent
NEWEST = "1.37"


def deployment(**container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "web", "image": "ghcr.io/acme/web:1.2.3"}
    spec.update(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [spec]},
            },
        },
    }


def kinds_of(problems: list[k8sschemas.SchemaProblem]) -> list[tuple[tuple[Any, ...], str]]:
    return [(p.path, p.kind.name) for p in problems]


def prose(schema: object) -> bool:
    """Whether a schema still holds a `description` text (a property of that name, such as
    PriorityClass's, is no prose)."""
    if isinstance(schema, list):
        return any(prose(s) for s in schema)
    if not isinstance(schema, dict):
        return False
    if isinstance(schema.get("description"), str):
        return True
    return any(
        prose(v) if k != "properties" else any(prose(p) for p in v.values())
        for k, v in schema.items()
    )


# --- the vendored data ---------------------------------------------------------------


def test_five_consecutive_minors_are_vendored_up_to_the_newest_supported() -> None:
    minors = [r.minor for r in k8sschemas.releases()]
    assert minors == [(1, 33), (1, 34), (1, 35), (1, 36), (1, 37)]
    assert k8sschemas.newest().release == "v1.37.0"
    assert k8sschemas.release_for((1, 30)).minor == (1, 33)  # older: the oldest
    assert k8sschemas.release_for((1, 40)).minor == (1, 37)  # newer: the newest


def test_every_file_is_stored_under_its_digest_and_every_reference_resolves() -> None:
    folder = resources.files(k8sschemas).joinpath("schemas")
    stored = {p.name.removesuffix(".json.gz") for p in folder.iterdir()}
    referenced = {r.table_id for r in k8sschemas.releases()} | {k8sschemas.index()["definitions"]}
    assert stored == referenced  # no dangling id, no orphan file
    for sid in stored:
        raw = gzip.decompress(folder.joinpath(f"{sid}.json.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest()[:16] == sid
    store = k8sschemas.definitions()
    for did, schema in store.items():
        raw = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
        assert hashlib.sha256(raw).hexdigest()[:16] == did
        assert not prose(schema), did
    for release in k8sschemas.releases():
        assert set(release.types.values()) <= set(store)
        for kinds in release.kinds.values():
            for name in kinds.values():
                assert name in release.types


def test_identical_definitions_are_stored_once_across_minors() -> None:
    per_minor = sum(len(r.types) for r in k8sschemas.releases())
    assert len(k8sschemas.definitions()) < per_minor / 3
    # and an unchanged kind shares one compiled validator between minors
    old = validator_for("v1", "ConfigMap", k8sschemas.release_for((1, 33)))
    new = validator_for("v1", "ConfigMap", k8sschemas.release_for((1, 37)))
    assert old is not None and old is new


def test_the_package_ships_the_data_and_its_licences() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = data["tool"]["setuptools"]["package-data"]["bot.analysis.k8sschemas"]
    assert {"index.json", "schemas/*.json.gz", "LICENSE", "NOTICE"} <= set(shipped)
    assert {"pluto/versions.yaml", "pluto/LICENSE", "pluto/NOTICE"} <= set(shipped)
    folder = resources.files(k8sschemas)
    assert "Kubernetes Authors" in folder.joinpath("NOTICE").read_text()
    assert "Apache License" in folder.joinpath("LICENSE").read_text()
    assert "FairwindsOps/pluto" in folder.joinpath("pluto", "NOTICE").read_text()


def test_built_in_kinds_are_known_and_custom_ones_are_not() -> None:
    assert k8sschemas.is_builtin("apps/v1", "Deployment")
    assert k8sschemas.is_builtin("networking.k8s.io/v1", "Ingress")
    assert not k8sschemas.is_builtin("helm.toolkit.fluxcd.io/v2", "HelmRelease")
    assert not k8sschemas.is_builtin("apps/v1", "DeploymentList")
    assert k8sschemas.is_builtin_group("batch/v1beta1")


# --- the mistakes server-side apply refuses ------------------------------------------


def test_an_unknown_field_is_reported_with_the_field_meant() -> None:
    obj = deployment()
    obj["spec"]["replica"] = obj["spec"].pop("replicas")
    problems = validate(obj, NEWEST)
    assert kinds_of(problems) == [(("spec", "replica"), "UNKNOWN_FIELD")]
    assert problems[0].message == (
        "`.spec.replica` is not a field of Deployment apps/v1 (did you mean `replicas`?)"
    )
    assert problems[0].suggestion == "replicas"
    assert validate(deployment(), NEWEST) == []


def test_a_value_outside_the_enum_is_reported_and_the_allowed_ones_are_not() -> None:
    problems = validate(deployment(imagePullPolicy="Sometimes"), NEWEST)
    path = ("spec", "template", "spec", "containers", 0, "imagePullPolicy")
    assert kinds_of(problems) == [(path, "ENUM")]
    assert '"Sometimes"' in problems[0].message
    assert "Always, IfNotPresent, Never" in problems[0].message
    assert len(problems[0].message) <= 125
    for policy in ("IfNotPresent", "Always", "Never", ""):
        assert validate(deployment(imagePullPolicy=policy), NEWEST) == []


def test_a_port_out_of_range_is_reported_and_a_valid_one_is_not() -> None:
    problems = validate(deployment(ports=[{"containerPort": 0}]), NEWEST)
    path = ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort")
    assert kinds_of(problems) == [(path, "RANGE")]
    assert problems[0].message.endswith("is 0: must be between 1 and 65535")
    assert validate(deployment(ports=[{"containerPort": 8080, "name": "http"}]), NEWEST) == []
    assert validate(deployment(ports=[{"containerPort": 65536}]), NEWEST)


def test_a_wrong_type_is_reported() -> None:
    obj = deployment(env=[{"name": "PORT", "value": 8080}])
    obj["spec"]["replicas"] = "2"
    problems = validate(obj, NEWEST)
    assert kinds_of(problems) == [
        (("spec", "replicas"), "WRONG_TYPE"),
        (("spec", "template", "spec", "containers", 0, "env", 0, "value"), "WRONG_TYPE"),
    ]
    assert problems[0].message == '`.spec.replicas` must be an integer, not a string ("2")'


def test_a_required_field_is_reported_only_where_its_zero_value_is_refused() -> None:
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["name"]
    problems = validate(obj, NEWEST)
    path = ("spec", "template", "spec", "containers", 0, "name")
    assert kinds_of(problems) == [(path, "REQUIRED")]
    # PriorityClass `value` is required in the schema, but 0 is a valid priority
    priority = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass"}
    assert validate(priority | {"metadata": {"name": "low"}}, NEWEST) == []
    # a port's number is required and 0 is refused: missing is reported
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "targetPort": "http"}]},
    }
    assert kinds_of(validate(service, NEWEST)) == [(("spec", "ports", 0, "port"), "REQUIRED")]


def test_duplicate_keys_of_a_keyed_list_are_reported() -> None:
    obj = deployment(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}])
    problems = validate(obj, NEWEST)
    path = ("spec", "template", "spec", "containers", 0, "env", 1)
    assert kinds_of(problems) == [(path, "DUPLICATE")]
    assert 'name: "A"' in problems[0].message
    distinct = deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    assert validate(distinct, NEWEST) == []


def test_a_label_value_the_api_server_refuses() -> None:
    obj = deployment()
    obj["metadata"]["labels"]["team"] = "platform team"
    assert kinds_of(validate(obj, NEWEST)) == [(("metadata", "labels", "team"), "FORMAT")]
    obj["metadata"]["labels"]["team"] = "platform-team"
    assert validate(obj, NEWEST) == []


def test_a_file_mode_written_in_decimal_is_out_of_range() -> None:
    obj = deployment()
    volume: dict[str, Any] = {"name": "config", "configMap": {"name": "web", "defaultMode": 755}}
    obj["spec"]["template"]["spec"]["volumes"] = [volume]
    problems = validate(obj, NEWEST)
    assert [p.kind for p in problems] == [ProblemKind.RANGE]
    volume["configMap"]["defaultMode"] = 0o755
    assert validate(obj, NEWEST) == []


# --- what the API server accepts -------------------------------------------------------


def test_int_or_string_takes_either() -> None:
    for port in (8080, "http"):
        obj = deployment(livenessProbe={"httpGet": {"path": "/", "port": port}})
        obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
        assert validate(obj, NEWEST) == []
    obj = deployment(livenessProbe={"httpGet": {"port": True}})
    assert [p.kind for p in validate(obj, NEWEST)] == [ProblemKind.WRONG_TYPE]


@pytest.mark.parametrize("value", ["500m", "1Gi", "128Mi", "1.5", "2", 1, 0.5, "1e3", "10k"])
def test_quantities_take_their_strings_and_numbers(value: object) -> None:
    obj = deployment(resources={"limits": {"cpu": value, "memory": value}})
    assert validate(obj, NEWEST) == []


@pytest.mark.parametrize("value", ["512MB", "1 Gi", "lots", True])
def test_not_a_quantity_is_reported(value: object) -> None:
    obj = deployment(resources={"requests": {"memory": value}})
    problems = validate(obj, NEWEST)
    assert len(problems) == 1
    assert problems[0].path[-1] == "memory"
    assert problems[0].kind in (ProblemKind.FORMAT, ProblemKind.WRONG_TYPE)


def test_an_integral_float_is_an_integer_and_a_fraction_is_not() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = 2.0
    assert validate(obj, NEWEST) == []
    obj["spec"]["replicas"] = 2.5
    assert [p.kind for p in validate(obj, NEWEST)] == [ProblemKind.WRONG_TYPE]


def test_substitution_variables_and_what_is_below_them_are_not_judged() -> None:
    obj = deployment(ports=[{"containerPort": "${PORT}"}], imagePullPolicy="${POLICY}")
    obj["spec"]["replicas"] = "${REPLICAS:=2}"
    obj["metadata"]["labels"]["${LABEL}"] = "x"
    obj["spec"]["${FIELD}"] = {"anything": [1, 2]}
    assert validate(obj, NEWEST) == []


def test_nulls_and_status_are_not_judged() -> None:
    obj = deployment()
    obj["metadata"]["creationTimestamp"] = None
    obj["spec"]["strategy"] = None
    obj["spec"]["template"]["metadata"]["creationTimestamp"] = None
    obj["status"] = {"whatever": "the controller wrote"}
    assert validate(obj, NEWEST) == []


def test_embedded_objects_take_anything() -> None:
    revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "web-1"},
        "revision": 1,
        "data": {"spec": {"anything": ["goes", 1]}},
    }
    assert validate(revision, NEWEST) == []


def test_a_sops_encrypted_secret_is_judged_as_flux_decrypts_it() -> None:
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"token": "ENC[AES256_GCM,data:abc,type:str]"},
        "sops": {"age": [{"recipient": "age1xyz"}], "version": "3.9.0"},
    }
    assert validate(secret, NEWEST) == []
    secret["metadata"]["nmae"] = "typo"
    assert kinds_of(validate(secret, NEWEST)) == [(("metadata", "nmae"), "UNKNOWN_FIELD")]


def test_fields_are_judged_in_the_cluster_s_minor() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["hostnameOverride"] = "web-0"
    assert validate(obj, "1.37") == []
    problems = validate(obj, (1, 33))
    assert kinds_of(problems) == [
        (("spec", "template", "spec", "hostnameOverride"), "UNKNOWN_FIELD")
    ]


def test_objects_of_kinds_the_minor_does_not_serve_are_left_to_other_checks() -> None:
    cronjob = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "x"}}
    assert validate(cronjob, NEWEST) == []
    release = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "spec": 1}
    assert validate(release, NEWEST) == []
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        validate(deployment(), "latest")


def test_validating_does_not_change_the_object() -> None:
    obj = deployment(env=[{"name": "A", "value": None}], ports=[{"containerPort": "${P}"}])
    before = copy.deepcopy(obj)
    validate(obj, NEWEST)
    assert obj == before
