"""The words of member sign-in, in English and Ukrainian (pure): the email with the link,
and the pages a click on a spent, late or unknown link shows.

Locales are the ones membership.core.i18n serves; anything else was already reduced to English
by `i18n.resolve_locale`.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

from membership.core import i18n

MAIL = {
    "en": {
        "subject": "Your sign-in link for {publication}",
        "body": (
            "Hello,\n\n"
            "Follow this link to be recognized as a member of {publication} on the device"
            " where you asked for it:\n\n"
            "{link}\n\n"
            "It works once, within {minutes}. If you did not ask for it, ignore this email:"
            " nothing changes.\n\n"
            "{publication}\n"
        ),
        "minutes": {"one": "{n} minute", "other": "{n} minutes"},
    },
    "uk": {
        "subject": "Посилання для входу — {publication}",
        "body": (
            "Вітаємо!\n\n"
            "Перейдіть за цим посиланням, щоб {publication} впізнавав вас як учасника"
            " спільноти на пристрої, з якого ви його запитали:\n\n"
            "{link}\n\n"
            "Посилання спрацює один раз, упродовж {minutes}. Якщо ви його не запитували,"
            " просто проігноруйте цей лист: нічого не зміниться.\n\n"
            "{publication}\n"
        ),
        # "упродовж 15 хв": the abbreviation needs no plural (genitive) forms.
        "minutes": {"other": "{n} хв"},
    },
}

# The page a click on a link shows when it cannot sign in (410), and after a new link was
# asked for from it (202). `state`: used, expired, unknown, sent.
PAGE = {
    "en": {
        "title": {
            "used": "This link was already used",
            "expired": "This link has expired",
            "unknown": "This link is not valid",
            "sent": "Check your inbox",
            "invalid": "Please check the email address",
        },
        "text": {
            "used": "Each sign-in link works once. Ask for a new one below.",
            "expired": "Sign-in links work for {minutes}. Ask for a new one below.",
            "unknown": "It may have been cut short by your email app, or be older than a day."
            " Ask for a new link where you read {publication}.",
            "sent": "If this address belongs to a member of {publication}, a new sign-in link"
            " is on its way.",
            "invalid": "{problem}",
        },
        "email_label": "Your email",
        "button": "Send me a new link",
        "back": "Back to {publication}",
    },
    "uk": {
        "title": {
            "used": "Це посилання вже використано",
            "expired": "Термін дії посилання минув",
            "unknown": "Посилання недійсне",
            "sent": "Перевірте пошту",
            "invalid": "Перевірте адресу електронної пошти",
        },
        "text": {
            "used": "Кожне посилання для входу спрацьовує лише раз. Запросіть нове нижче.",
            "expired": "Посилання для входу діють {minutes}. Запросіть нове нижче.",
            "unknown": "Можливо, поштова програма обрізала посилання, чи воно старше за добу."
            " Запросіть нове посилання там, де читаєте {publication}.",
            "sent": "Якщо ця адреса належить учаснику спільноти {publication}, нове посилання"
            " для входу вже в дорозі.",
            "invalid": "{problem}",
        },
        "email_label": "Ваша електронна пошта",
        "button": "Надіслати нове посилання",
        "back": "Повернутися до {publication}",
    },
}


def minutes(locale: str, seconds: int) -> str:
    n = max(1, seconds // 60)
    return i18n.pick(MAIL[locale]["minutes"], locale, n).format(n=i18n.format_number(locale, n))


def sign_in_mail(
    *,
    locale: str,
    to: str,
    link: str,
    publication: str,
    mail_from: str,
    link_seconds: int,
) -> EmailMessage:
    """The email with a sign-in link (plain text: it reads everywhere, and nothing in it
    can be made to look like something else)."""
    copy = MAIL[locale]
    message = EmailMessage()
    message["Subject"] = copy["subject"].format(publication=publication)
    message["From"] = mail_from
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="membership.invalid")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content(
        copy["body"].format(
            publication=publication, link=link, minutes=minutes(locale, link_seconds)
        )
    )
    return message


def page(locale: str, state: str, *, publication: str, link_seconds: int, problem: str = ""):
    """The title, text and labels of a link page, in `locale`."""
    copy = PAGE[locale]
    values = {
        "publication": publication,
        "minutes": minutes(locale, link_seconds),
        "problem": problem,
    }
    return {
        "title": copy["title"][state],
        "text": copy["text"][state].format(**values),
        "email_label": copy["email_label"],
        "button": copy["button"],
        "back": copy["back"].format(**values),
    }
