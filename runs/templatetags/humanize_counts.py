from django import template

register = template.Library()


@register.filter
def grouped(value) -> str:
    """12345 -> "12,345": counts readable at a glance, in every language of the admin."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)
