"""The report's languages: English (the default) and Arabic, the language of the operators' directive.

The decision page and the section headings are translated; the figures are the same numbers, and
the checks' details (generated from the data) stay in English inside the Arabic page, marked
left-to-right so that numbers, versions and timestamps keep their order. Every text the page
draws is a template here, so a missing translation fails the tests rather than the approver.
"""
from __future__ import annotations

import re

from reliability.errors import ConfigurationError

LANGUAGES = ("en", "ar")
#: Unicode's left-to-right isolate: a version, number or timestamp inside Arabic keeps its own order.
LRI, PDI = "\u2066", "\u2069"

EN: dict[str, str] = {
    "GO": "GO", "NO-GO": "NO-GO", "INCONCLUSIVE": "INCONCLUSIVE",
    "PASS": "PASS", "FAIL": "FAIL", "WARN": "WARN",
    "go": "{candidate} may be deployed: every required check passed.",
    "rollback": "Do not deploy {candidate}. Roll back to {stable} with the runbook, and do not fix in production:",
    "rollback_unknown": ("Do not deploy {candidate}. Roll back to the last version that worked: no stable version is "
                         "known (.last-stable-version is missing); find it in the deploy history first."),
    "confirm": "Then confirm the 5xx ratio falls below {limit} on the dashboard "
               "(this tool never deploys or rolls back by itself).",
    "incomplete": "Do not deploy {candidate} yet: the evidence is incomplete ({missing}).",
    "see_below": "see below",
    "more_requests": "R needs {need} requests, {more} more than the window has{wait}.",
    "more_wait": ", about {wait} more at this window's traffic",
    "banner": ("DEMO DATA: recorded history served by the embedded Prometheus (the bundled generated history "
               "when run by reliability demo), not a production server. Not evidence for a real deploy."),
    "candidate": "Candidate", "candidate_value": "{candidate} (stable: {stable})", "none_known": "none known",
    "window": "Window", "window_value": "{start} to {end} UTC ({span})", "scope": "Scope", "r": "R (share of requests without a 5xx)",
    "r_lower": "R, {confidence} lower bound", "r_lower_value": "{bound} (must exceed {threshold})",
    "requests": "Requests", "requests_value": "{requests}, of which {errors} ended in a 5xx",
    "units": "Independent units",
    "units_value": "{units} (how many separate pieces of evidence the 5xx amount to)",
    "not_measured": "not measured", "r_missing": "not computed: {why}",
    "problems": "Checks that failed or could not be proven",
    "all_passed": "Every required check passed; each is shown in its section below.",
    "warnings": "Warnings (they do not decide)", "provenance": "Provenance",
    "generated": "Generated", "tool": "Tool", "build": "Candidate build", "prometheus": "Prometheus",
    "installed": "installed package", "no_build": "not given (pass --build, or run in CI)",
    "embedded": " (embedded, recorded history)",
    "title": "love — monitoring proof for {candidate}", "badge": "Verdict: {verdict}",
    "page": '"Page " counter(page) " of " counter(pages)',
}

AR: dict[str, str] = {
    "GO": "GO — يُسمح بالنشر", "NO-GO": "NO-GO — لا يُسمح بالنشر", "INCONCLUSIVE": "INCONCLUSIVE — غير حاسم",
    "PASS": "نجح", "FAIL": "فشل", "WARN": "تحذير",
    "go": "يجوز نشر {candidate}: نجحت جميع الفحوص المطلوبة.",
    "rollback": "لا تنشر {candidate}. تراجع إلى {stable} وفق دليل التشغيل، ولا تحاول الإصلاح في بيئة الإنتاج:",
    "rollback_unknown": ("لا تنشر {candidate}. تراجع إلى آخر إصدار كان يعمل: لا يُعرف إصدار مستقر "
                         "(الملف " + LRI + ".last-stable-version" + PDI + " غير موجود)؛"
                         " حدّده من سجل النشر أولاً."),
    "confirm": "ثم تأكد أن نسبة 5xx دون {limit} في لوحة التحكم (هذه الأداة لا تنشر ولا تتراجع من تلقاء نفسها).",
    "incomplete": "لا تنشر {candidate} بعد: الأدلة غير مكتملة ({missing}).",
    "see_below": "انظر أدناه",
    "more_requests": "يحتاج R إلى {need} طلب، أي {more} أكثر مما في النافذة{wait}.",
    "more_wait": "، أي نحو {wait} إضافية بحركة هذه النافذة",
    "banner": ("بيانات تجريبية: تاريخ مسجَّل يقدّمه Prometheus المضمَّن (التاريخ المولَّد المرفق عند التشغيل "
               "بالأمر " + LRI + "reliability demo" + PDI + ")،"
               " وليس خادم إنتاج. ليست دليلاً لنشر حقيقي."),
    "candidate": "الإصدار المرشح", "candidate_value": "{candidate} (المستقر: {stable})", "none_known": "غير معروف",
    "window": "النافذة الزمنية", "window_value": "من {start} إلى {end} UTC ({span})", "scope": "النطاق", "r": "R (نسبة الطلبات التي لم تنتهِ بـ 5xx)",
    "r_lower": "الحد الأدنى لـ R بثقة {confidence}", "r_lower_value": "{bound} (يجب أن يتجاوز {threshold})",
    "requests": "الطلبات", "requests_value": "{requests}، منها {errors} انتهت بـ 5xx",
    "units": "الوحدات المستقلة",
    "units_value": "{units} (عدد الأدلة المستقلة التي تمثّلها أخطاء 5xx)",
    "not_measured": "لم تُقَس", "r_missing": "لم يُحسب: {why}",
    "problems": "الفحوص التي فشلت أو تعذّر إثباتها",
    "all_passed": "نجحت جميع الفحوص المطلوبة؛ كلٌّ منها معروض في قسمه أدناه.",
    "warnings": "تحذيرات (لا تحسم القرار)", "provenance": "مصدر التقرير",
    "generated": "تاريخ الإنشاء", "tool": "الأداة", "build": "بناء المرشح", "prometheus": "Prometheus",
    "installed": "حزمة مثبّتة", "no_build": "غير محدد (مرّر " + LRI + "--build" + PDI + " أو شغّل في CI)",
    "embedded": " (مضمَّن، تاريخ مسجَّل)",
    "title": "إثبات المراقبة للإصدار {candidate} — love", "badge": "القرار: {verdict}",
    "page": '"صفحة " counter(page) " من " counter(pages)',
}

#: Check names as the page shows them; a name not listed (an R check names its threshold) is matched by prefix.
CHECKS_AR = {
    "Scope": "النطاق", "Prometheus ready": "Prometheus جاهز", "Prometheus is reachable": "Prometheus متاح",
    "Alert rules loaded": "قواعد التنبيه محمَّلة", "Alertmanager discovered": "Alertmanager مكتشَف",
    "Series present": "السلاسل موجودة", "Rate ranges": "نطاقات المعدّل", "Dashboard panels": "لوحات لوحة التحكم",
    "Grafana health": "سلامة Grafana", "Grafana dashboard": "لوحة Grafana", "Grafana panel images": "صور لوحات Grafana",
    "Monitoring works": "المراقبة تعمل", "Error budget": "ميزانية الأخطاء", "Candidate vs stable": "المرشح مقابل المستقر",
    "High5xxErrorRate on the candidate": "التنبيه High5xxErrorRate على حركة المرشح",
    "Circuit breakers at the window end": "القواطع الدائرية في نهاية النافذة",
    "A breaker on every dependency": "قاطع دائري لكل خدمة خارجية",
    "Regression tests": "اختبارات الانحدار", "Cache invalidation": "إبطال ذاكرة التخزين المؤقت",
    "Data quality": "جودة البيانات",
}

#: The notebook's markdown headings, by their English text.
HEADINGS_AR = {
    "Monitoring proof report — love backend": "تقرير إثبات المراقبة — الواجهة الخلفية لنظام love",
    "1. Verdict": "1. القرار", "Every check": "جميع الفحوص", "2. Monitoring works": "2. المراقبة تعمل",
    "3. Reliability": "3. الموثوقية", "4. Alert backtest": "4. إعادة تشغيل التنبيهات على التاريخ",
    "5. Circuit breakers": "5. القواطع الدائرية", "6. Cache consistency": "6. تناسق ذاكرة التخزين المؤقت",
    "7. Regression tests": "7. اختبارات الانحدار", "8. Data quality": "8. جودة البيانات",
    "9. Provenance": "9. مصدر التقرير",
}

#: The report's opening paragraph (page 1, above the decision).
INTRO_AR = ("هل يجوز نشر الإصدار المرشح وفق قاعدة المشغّلين الصادرة في 29 أكتوبر 2025: "
            "R > 0.98 (لا تتجاوز نسبة طلبات HTTP المنتهية بـ 5xx 2%)، مُثبتةً من تاريخ المراقبة.")


def check_language(lang: str, *, name: str = "lang") -> str:
    """``lang`` if the report speaks it; a usage error naming the choices otherwise."""
    if lang not in LANGUAGES:
        raise ConfigurationError(f"{name} {lang!r} is not a report language; choose one of {', '.join(LANGUAGES)}")
    return lang


def isolated(template: str) -> str:
    """``template`` with each ``{placeholder}`` isolated left to right (for right-to-left text)."""
    return re.sub(r"(\{[a-z_]+\})", LRI + r"\1" + PDI, template)


def texts(lang: str) -> dict[str, str]:
    """The page's templates in ``lang``; in Arabic every filled-in value is a left-to-right isolate."""
    if check_language(lang) == "en":
        return EN
    return {k: v if k == "page" else isolated(v) for k, v in AR.items()}


def has_arabic(text: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" for ch in text)


def check_name(name: str, lang: str) -> str:
    """A check's name in ``lang`` (the R check keeps its threshold and version)."""
    if lang != "ar":
        return name
    if name.startswith("R > "):
        threshold, _, version = name[len("R > "):].partition(" for ")
        return f"R > {threshold} للإصدار {version}"
    return CHECKS_AR.get(name, name)


def heading(text: str, lang: str) -> str | None:
    """A notebook heading's translation, or None to keep the English one."""
    return HEADINGS_AR.get(text.strip()) if lang == "ar" else None
