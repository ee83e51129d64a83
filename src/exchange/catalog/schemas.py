"""The catalogue's shapes: one document per resource, used by the YAML files, the API and the history.

A :class:`ResourceSpec` is what a steward writes (in ``catalog/resources/*.yaml`` or a PUT body).
:class:`ResourceOut` adds what the hub derives: the version, the resource-level sharing type and open flag
(from its elements, so they can never disagree), and the classification read off the national code.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from exchange.identifiers import InvalidIdentifier, normalize_uscc

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
RESOURCE_CODE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
# 政务信息资源目录编制指南(试行) 2017: 类 (1 digit) 项 (2) 目 (3) 细目 (any length) / 顺序码.
NATIONAL_CODE = re.compile(
    r"^(?P<class>[123])(?P<item>\d{2})(?P<entry>\d{3})(?P<detail>\d*)/(?P<sequence>\d{1,12})$"
)

RESOURCE_CLASSES = {"1": "基础信息资源", "2": "主题信息资源", "3": "部门信息资源"}
BASE_RESOURCE_ITEMS = {
    "01": "人口基础信息资源",
    "02": "法人单位基础信息资源",
    "03": "自然资源和空间地理基础信息资源",
    "04": "社会信用基础信息资源",
    "05": "电子证照基础信息资源",
}

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class SubjectType(StrEnum):
    person = "person"
    legal_entity = "legal_entity"
    place = "place"


class SubjectIdType(StrEnum):
    id_number = "id_number"  # 公民身份号码
    uscc = "uscc"  # 统一社会信用代码
    address_code = "address_code"  # 标准地址编码


SUBJECT_ID_TYPES = {
    SubjectType.person: SubjectIdType.id_number,
    SubjectType.legal_entity: SubjectIdType.uscc,
    SubjectType.place: SubjectIdType.address_code,
}


class ElementType(StrEnum):
    string = "string"
    text = "text"
    integer = "integer"
    decimal = "decimal"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"
    code = "code"
    id_number = "id_number"
    uscc = "uscc"
    division_code = "division_code"
    phone = "phone"
    geometry = "geometry"


LENGTH_TYPES = frozenset({ElementType.string, ElementType.text, ElementType.code, ElementType.phone})


class Sharing(StrEnum):
    unconditional = "unconditional"  # 无条件共享
    conditional = "conditional"  # 有条件共享
    none = "none"  # 不予共享


class UpdateCycle(StrEnum):
    realtime = "realtime"  # 实时
    daily = "daily"  # 每日
    weekly = "weekly"  # 每周
    monthly = "monthly"  # 每月
    quarterly = "quarterly"  # 每季度
    semiannual = "semiannual"  # 每半年
    yearly = "yearly"  # 每年


class FormatType(StrEnum):
    """信息资源格式 categories of the 编制指南."""

    electronic_file = "电子文件"
    spreadsheet = "电子表格"
    database = "数据库"
    image = "图形图像"
    streaming_media = "流媒体"
    self_describing = "自描述格式"
    interface = "接口"
    other = "其他"


def department_code(value: str) -> str:
    try:
        return normalize_uscc(value)
    except InvalidIdentifier as exc:
        raise ValueError(f"not a valid 统一社会信用代码: {exc}") from None


class CodeItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    title: Title


class ElementSpec(BaseModel):
    """信息项: one field of a resource, with its single authoritative source (一数一源)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    name: Name
    title: Title
    description: Text | None = None
    type: ElementType
    length: int | None = Field(
        default=None, ge=1, le=100_000, description="Maximum length, for textual types."
    )
    codes: list[CodeItem] | None = Field(default=None, description="The code list; required for type code.")
    unit: Title | None = None
    precision: int | None = Field(
        default=None, ge=0, le=12, description="Decimal places that count when values are compared (decimal)."
    )
    tolerance_m: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        description="Metres within which two geometries state the same place (geometry; default 5).",
    )
    required: bool = False
    source_department: str = Field(
        description="The ONE department whose value is canonical (统一社会信用代码)."
    )
    sharing: Sharing
    open: bool = False

    _check_source = field_validator("source_department")(department_code)

    @field_validator("source_department", mode="before")
    @classmethod
    def _one_source(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            raise ValueError(f"an element has exactly one source department (一数一源), not {len(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type is ElementType.code and not self.codes:
            raise ValueError("an element of type code needs its codes")
        if self.type is not ElementType.code and self.codes is not None:
            raise ValueError("only an element of type code has codes")
        if self.codes is not None:
            seen = [item.code for item in self.codes]
            if len(seen) != len(set(seen)):
                raise ValueError("the code list repeats a code")
        if self.length is not None and self.type not in LENGTH_TYPES:
            raise ValueError(f"length applies to {', '.join(sorted(LENGTH_TYPES))} only")
        if self.precision is not None and self.type is not ElementType.decimal:
            raise ValueError("precision applies to decimal elements only")
        if self.tolerance_m is not None and self.type is not ElementType.geometry:
            raise ValueError("tolerance_m applies to geometry elements only")
        if self.open and self.sharing is not Sharing.unconditional:
            raise ValueError("only an element shared unconditionally may be open")
        return self


class ResourceFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: FormatType
    detail: Text | None = Field(default=None, description="e.g. 'PostgreSQL', 'REST/JSON'.")


class SharingTerms(BaseModel):
    """共享属性 apart from the type, which is derived from the elements."""

    model_config = ConfigDict(extra="forbid")

    condition: Text | None = Field(default=None, description="共享条件")
    method: Text = Field(description="共享方式, e.g. '共享交换平台接口'.")


class ResourceSpec(BaseModel):
    """信息资源 as a steward writes it."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(pattern=RESOURCE_CODE_PATTERN, max_length=100)]
    national_code: str = Field(description="信息资源代码: 类 项 目 细目 / 顺序码, e.g. 10100101/000001.")
    title: Title
    description: Text = Field(description="摘要")
    subject_type: SubjectType
    subject_id_type: SubjectIdType
    owner_department: str = Field(description="提供方 (its 统一社会信用代码 is the 提供方代码).")
    format: ResourceFormat
    sharing: SharingTerms
    open_condition: Text | None = Field(default=None, description="开放条件, when some elements are open.")
    update_cycle: UpdateCycle
    published_on: date = Field(description="发布日期")
    related: list[str] = Field(default_factory=list, description="关联资源代码 (national codes).")
    elements: list[ElementSpec] = Field(min_length=1)

    _check_owner = field_validator("owner_department")(department_code)

    @field_validator("national_code")
    @classmethod
    def _national(cls, value: str) -> str:
        value = value.strip()
        if not NATIONAL_CODE.match(value):
            raise ValueError(
                "not a 信息资源代码 of the form 类(1) 项(2) 目(3) 细目 / 顺序码, e.g. 10100101/000001"
            )
        return value

    @field_validator("related")
    @classmethod
    def _related(cls, values: list[str]) -> list[str]:
        for value in values:
            if not NATIONAL_CODE.match(value):
                raise ValueError(f"{value!r} is not a 信息资源代码")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        expected = SUBJECT_ID_TYPES[self.subject_type]
        if expected is not self.subject_id_type:
            raise ValueError(f"a {self.subject_type.value} resource is keyed by {expected.value}")
        names = [element.name for element in self.elements]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"element names must be unique; repeated: {', '.join(repeated)}")
        if self.national_code in self.related:
            raise ValueError("a resource cannot be related to itself")
        return self

    def element(self, name: str) -> ElementSpec | None:
        return next((element for element in self.elements if element.name == name), None)


def resource_sharing(elements: list[ElementSpec]) -> Sharing:
    """The resource-level 共享类型: unconditional only if every element is, none only if none is shared."""
    kinds = {element.sharing for element in elements}
    if kinds == {Sharing.unconditional}:
        return Sharing.unconditional
    if kinds == {Sharing.none}:
        return Sharing.none
    return Sharing.conditional


def classification(national_code: str) -> dict[str, str]:
    match = NATIONAL_CODE.match(national_code)
    assert match is not None
    parts = match.groupdict()
    label = RESOURCE_CLASSES[parts["class"]]
    if parts["class"] == "1" and parts["item"] in BASE_RESOURCE_ITEMS:
        label += "/" + BASE_RESOURCE_ITEMS[parts["item"]]
    return {
        "class": parts["class"],
        "item": parts["item"],
        "entry": parts["entry"],
        "detail": parts["detail"],
        "sequence": parts["sequence"],
        "label": label,
    }


class SharingOut(SharingTerms):
    type: Sharing


class ResourceOut(ResourceSpec):
    """A resource as the hub serves it."""

    sharing: SharingOut
    open: bool = Field(description="开放属性: true when at least one element is open data.")
    classification: dict[str, str]
    version: int
    updated_at: datetime


class DepartmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    name: Title

    _check_code = field_validator("code")(department_code)


class PurposeSpec(BaseModel):
    """A registered declared use: reads must name one, and grants are made for one."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,62}$")]
    title: Title
    legal_basis: Text = Field(description="法律依据: the law or regulation that permits the use.")
    description: Text | None = None


class ResourcePage(BaseModel):
    items: list[ResourceOut]
    next_cursor: str | None


class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    changed_at: datetime
    actor: str
    actor_department: str | None
    breaking: bool
    changes: list[dict[str, Any]]


class HistoryPage(BaseModel):
    items: list[ChangeOut]
    next_cursor: str | None


class ResourceVersion(BaseModel):
    code: str
    version: int
    changed_at: datetime
    actor: str
    document: ResourceSpec | None


class PurposeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    title: str
    legal_basis: str
    description: str | None


class PurposeList(BaseModel):
    items: list[PurposeOut]


class CatalogDepartment(BaseModel):
    code: str
    name: str


class CatalogDepartmentList(BaseModel):
    items: list[CatalogDepartment]
