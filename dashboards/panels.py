"""Small builders every dashboard is made of: queries, panel kinds, variables, the dashboard shell."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import statetimeline as statetimeline_builders
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
"""The rate window of panels: Grafana widens it to at least four scrape intervals."""
TAG = "cerebrum"


def query(expr: str, legend: str = "", *, exemplar: bool = False, instant: bool = False) -> prometheus.Dataquery:
    """A PromQL query; exemplars on latency and traffic queries link their points to traces."""
    q = prometheus.Dataquery().expr(expr).datasource(PROMETHEUS)
    if legend:
        q = q.legend_format(legend)
    if exemplar:
        q = q.exemplar(True)
    if instant:
        q = q.instant().format(PromQueryFormat.TABLE)
    return q


Queryable = timeseries.Panel | stat.Panel | table.Panel | statetimeline_builders.Panel


def _with_queries(panel: Queryable, queries: tuple[prometheus.Dataquery, ...]) -> None:
    for index, q in enumerate(queries):
        panel.with_target(q.ref_id(chr(ord("A") + index)))


def graph(
    title: str,
    *queries: prometheus.Dataquery,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    max_value: float | None = None,
    lines: list[tuple[float | None, str]] | None = None,
) -> timeseries.Panel:
    """A time series panel; ``lines`` draws dashed threshold lines (value, colour)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(height)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if description:
        panel = panel.description(description)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if max_value is not None:
        panel = panel.max(max_value)
    if lines:
        panel = panel.thresholds(steps(lines)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)
        )
    _with_queries(panel, queries)
    return panel


def single(
    title: str,
    q: prometheus.Dataquery,
    *,
    unit: str = "short",
    description: str = "",
    width: int = 6,
    height: int = 4,
    decimals: int | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> stat.Panel:
    """A stat panel showing the last value of one query."""
    panel = (
        stat.Panel()
        .title(title)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(height)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if description:
        panel = panel.description(description)
    if thresholds:
        panel = panel.thresholds(steps(thresholds))
    if decimals is not None:
        panel = panel.decimals(decimals)
    _with_queries(panel, (q,))
    return panel


def ranking(
    title: str, q: prometheus.Dataquery, *, unit: str = "short", description: str = "", width: int = 12
) -> table.Panel:
    """A table of an instant query's series, highest value first."""
    panel = (
        table.Panel()
        .title(title)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(8)
        .sort_by([common_builders.TableSortByFieldState().display_name("Value").desc(True)])
    )
    if description:
        panel = panel.description(description)
    _with_queries(panel, (q,))
    return panel


def breaker_states(title: str, q: prometheus.Dataquery, *, width: int = 12) -> statetimeline_builders.Panel:
    """A state timeline of circuit breakers: 0 closed, 1 half-open, 2 open."""
    names = {"0": ("closed", "green"), "1": ("half-open", "orange"), "2": ("open", "red")}
    mapping = ValueMap(
        options={
            value: ValueMappingResult(text=text, color=color, index=index)
            for index, (value, (text, color)) in enumerate(names.items())
        }
    )
    panel = (
        statetimeline_builders.Panel()
        .title(title)
        .datasource(PROMETHEUS)
        .span(width)
        .height(8)
        .mappings([mapping])
        .show_value(common.VisibilityMode.AUTO)
    )
    _with_queries(panel, (q,))
    return panel


def steps(levels: list[tuple[float | None, str]]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds from (value, colour) pairs; the first value is None (the base)."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in levels])
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def label_variable(name: str, label: str, metric: str, *, include_all: bool = True) -> dashboard.QueryVariable:
    """A multi-value variable over one label's values on one metric."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(include_all)
        .all_value(".*")
    )


def new_dashboard(uid: str, title: str, description: str, *tags: str) -> dashboard.Dashboard:
    """A dashboard with the Prometheus data source variable and links to its siblings."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *tags])
        .editable()
        .timezone("browser")
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
        .link(
            dashboard.DashboardLink("Cerebrum dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
