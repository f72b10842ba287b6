"""The site file's JSON Schema, generated from the models ``load_site`` validates with.

Editors (via yaml-language-server) and CI can check a site file without cityguard, and because
the schema comes from the same models it cannot drift from what ``load_site`` accepts. The
logical rules (files exist, baselines and control ids are known, the version is one this
cityguard reads) are beyond a schema; ``load_site`` remains the judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cityguard.config.sections import SectionSpec, check_unique, registered_sections
from cityguard.config.site import site_file_model

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def site_schema(sections: Sequence[SectionSpec] | None = None) -> dict[str, Any]:
    """The JSON Schema of the site file with ``sections`` (default: every registered one)."""
    specs = check_unique(registered_sections() if sections is None else sections)
    schema = site_file_model(specs).model_json_schema(mode="validation")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema, "title": "cityguard site file"}
