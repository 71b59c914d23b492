"""What each member endpoint does, with its I/O (Redis, Stripe, SMTP); every refusal an ApiError.

The decisions are `rules`' (pure). Refresh and the portal take only a token whose proof fits
its subject (`rules.proven`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from membership.core import mail
from membership.core.config import Settings, parse_smtp_url
from membership.core.errors import ApiError
from membership.ledger.members import MemberSearch
from membership.ledger.queries import Queries
from membership.members import messages, rules
from membership.members.links import Links, Use
from membership.members.outbox import Outbox
from membership.members.stripe_calls import StripeCalls
from membership.prompts.tokens import MemberClaim, Tokens

log = logging.getLogger(__name__)

OFFLINE = (
    "this membership is not paid through Stripe, so there is nothing to manage online;"
    " please contact the newsroom"
)
ONCE_NO_PORTAL = (
    "a one-time contribution has nothing to manage online; a member signs in by email"
    " (POST /v1/member/sign-in) to manage their membership"
)


@dataclass(frozen=True)
class Issued:
    token: str
    claim: MemberClaim


class Members:
    def __init__(
        self,
        settings: Settings,
        queries: Queries,
        links: Links,
        outbox: Outbox,
        stripe: StripeCalls,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.queries = queries
        self.links = links
        self.outbox = outbox
        self.stripe = stripe
        self.clock = clock
        self.tokens = Tokens(settings.secret_key)
        self.smtp = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        # Tests trust their own SMTP server's certificate through this.
        self.smtp_tls_context = settings.extra.get("smtp_tls_context")

    # --- tokens ------------------------------------------------------------------------------

    def issue(self, subject: str, proof: str) -> Issued:
        claim = self.tokens.member(subject, self.clock(), proof=proof)
        return Issued(self.tokens.encode_member(claim), claim)

    def stripe_ready(self) -> StripeCalls:
        """Stripe's calls; 503 without STRIPE_API_KEY, before anything else is looked at."""
        self.stripe.ready()
        return self.stripe

    def token_after_checkout(self, session_id: str | None) -> Issued:
        stripe = self.stripe_ready()
        try:
            session_id = rules.check_session_id(session_id)
        except rules.RequestError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
        session = stripe.checkout_session(session_id)
        if session is None:
            raise ApiError(404, rules.NOT_PAID, "no checkout with this session id")
        try:
            subject = rules.session_subject(session, self.clock())
        except rules.NoProof as exc:
            status = 410 if exc.code == rules.TOO_OLD else 404
            raise ApiError(status, exc.code, str(exc)) from None
        return self.issue(subject, rules.CHECKOUT)

    def _claim(self, token: str) -> MemberClaim:
        """A valid member token's claim, its subject of a form we issue and proven as that
        form must be (`rules.proven`: not a token made before proofs were written); else 401."""
        claim = self.tokens.read_member(token, self.clock())
        subject = claim.subject if claim is not None else ""
        once = rules.once_of(subject)
        ours = (
            rules.CUSTOMER_ID.match(subject)
            or rules.email_of(subject)
            or (once and (rules.CUSTOMER_ID.match(once) or rules.SESSION_ID.match(once)))
        )
        if claim is None or not ours or not rules.proven(subject, claim.proof):
            raise ApiError(401, "invalid_token", "token: not a valid member token (or expired)")
        return claim

    def _current(self, subject: str) -> str:
        """`subject` when the ledger still counts its member; else 401."""
        email = rules.email_of(subject)
        customer = self.queries.customer(subject) if subject.startswith("cus_") else None
        bucket = self.queries.email_bucket(email) if email is not None else None
        if not rules.is_current(subject, customer, bucket):
            raise ApiError(401, "membership_ended", "token: the membership has ended")
        return subject

    def refresh(self, token: str) -> Issued:
        claim = self._claim(token)
        subject = claim.subject
        if rules.once_of(subject) is not None:
            raise ApiError(
                401,
                "not_renewable",
                "token: a one-time contribution is recognised until its token ends,"
                " and is not renewed",
            )
        return self.issue(self._current(subject), claim.proof)

    # --- sign-in by email --------------------------------------------------------------------

    def sign_in_ready(self) -> None:
        if self.smtp is None:
            raise ApiError(
                503,
                "mail_not_configured",
                "sign-in by email is not set up on this service (no SMTP_URL)",
            )

    def ask_sign_in(self, request: rules.SignIn) -> None:
        """Queue the lookup and the mail; 503 (for anyone) when the queue is full."""
        self.sign_in_ready()
        if not self.outbox.submit(lambda: self._mail_link(request)):
            raise ApiError(
                503,
                "sign_in_busy",
                "too many sign-in requests right now; try again shortly",
                headers={"Retry-After": "30"},
            )

    def _mail_link(self, request: rules.SignIn) -> None:
        """In the outbox's thread: a link for a current member; nothing for anyone else."""
        subject = rules.subject_for_email(self.queries.email_bucket(request.email))
        if subject is None:
            return
        code = self.links.issue(subject, request.return_url, request.locale, self.clock())
        message = messages.sign_in_mail(
            locale=request.locale,
            to=request.email,
            link=f"{self.settings.public_url}/v1/member/verify?code={code}",
            publication=self.settings.publication_name,
            mail_from=self.settings.mail_from,
            link_seconds=self.links.seconds,
        )
        try:
            mail.send(self.smtp, message, tls_context=self.smtp_tls_context)
        except mail.MailError as exc:
            log.warning("a sign-in link was not mailed: %s", exc)
            return
        log.info("a sign-in link was mailed")  # never the address: logs outlive the links

    def verify(self, code: str) -> tuple[Use, Issued | None]:
        use = self.links.use(code, self.clock())
        return use, (self.issue(use.subject, rules.LINK) if use.state == "ok" else None)

    # --- the Billing Portal ------------------------------------------------------------------

    def portal(self, token: str, return_url: str) -> str:
        stripe = self.stripe_ready()
        subject = self._claim(token).subject
        once = rules.once_of(subject)
        if once is not None:
            # A one-time contribution: the customer its Checkout created (the token says so,
            # signed when the session was checked), or nothing to manage.
            if rules.CUSTOMER_ID.match(once):
                return stripe.portal_url(once, return_url)
            raise ApiError(409, "nothing_to_manage", ONCE_NO_PORTAL)
        email = rules.email_of(self._current(subject))
        if email is None:
            return stripe.portal_url(subject, return_url)
        # Signed in by email (a link clicked from that mailbox: no Checkout makes an `email:`
        # token): an offline member has no Stripe customer; a Stripe member's is found by the
        # email and kept only if the ledger counts it.
        if self.queries.email_bucket(email).live > 0:
            # The ledger's own customers with the email first: Stripe's email filter is
            # case-sensitive and the ledger's addresses are lower-cased (Olena@Example.org).
            # Stripe's is left for a ledger whose member index was never built (docs/ledger.md).
            index = MemberSearch(self.queries.redis, self.queries.keys)
            found = index.customers_with_email(email) or stripe.customers_with_email(email)
            for customer in found:
                record = self.queries.customer(customer)
                if record is not None and record.live > 0:
                    return stripe.portal_url(customer, return_url)
        raise ApiError(409, "not_a_stripe_membership", OFFLINE)
