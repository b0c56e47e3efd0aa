"""The identity database's tables (SQLAlchemy Core). Times are epoch seconds (float): the
same on SQLite and PostgreSQL, and cheap to compare with token exp/iat."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

agencies = sa.Table(
    "agencies",
    metadata,
    sa.Column("code", sa.String(35), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("short_name", sa.String(50), nullable=False, default=""),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("parent_code", sa.String(35), nullable=True, index=True),
    sa.Column("mail_domain", sa.String(253), nullable=False, default=""),
    sa.Column("address", sa.String(300), nullable=False, default=""),
    sa.Column("phone", sa.String(32), nullable=False, default=""),
    sa.Column("email", sa.String(254), nullable=False, default=""),
    sa.Column("place_name", sa.String(100), nullable=False, default=""),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("successor_code", sa.String(35), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("first_name", sa.String(100), nullable=False, default=""),
    sa.Column("last_name", sa.String(100), nullable=False, default=""),
    sa.Column("email", sa.String(254), nullable=False, default=""),
    sa.Column("phone", sa.String(32), nullable=False, default=""),
    sa.Column("agency_code", sa.String(35), nullable=True, index=True),
    sa.Column("position", sa.String(200), nullable=False, default=""),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("password_temporary", sa.Boolean, nullable=False, default=False),
    # Keycloak's required actions besides UPDATE_PASSWORD (password_temporary), space-separated.
    sa.Column("required_actions", sa.String(200), nullable=False, default="", server_default=""),
    sa.Column("totp_secret", sa.String(64), nullable=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Float, nullable=True),
    sa.Column("last_login_at", sa.Float, nullable=True),
    # Set for the service-account user of a client system (client_credentials tokens).
    sa.Column("service_client_id", sa.String(64), nullable=True),
    sa.Column("search_text", sa.Text, nullable=False, default=""),  # accent-folded, for queries
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.UniqueConstraint("realm", "username", name="uq_users_realm_username"),
)

role_grants = sa.Table(
    "role_grants",
    metadata,
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("role", sa.String(64), nullable=False),
    # "" for realm roles granted through the Keycloak admin API without an agency.
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("include_sub", sa.Boolean, nullable=False, default=False),
    sa.Column("granted_at", sa.Float, nullable=False),
    sa.Column("granted_by", sa.String(80), nullable=False, default=""),
    sa.PrimaryKeyConstraint("user_id", "role", "agency_code", name="pk_role_grants"),
)

# Realm roles beyond the built-in ones (created through the admin REST API).
realm_roles = sa.Table(
    "realm_roles",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("description", sa.String(300), nullable=False, default=""),
    sa.UniqueConstraint("realm", "name", name="uq_realm_roles_name"),
)

# Composite realm roles: who holds `parent` holds `child` too, in the same agency.
role_composites = sa.Table(
    "role_composites",
    metadata,
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("parent", sa.String(64), nullable=False),
    sa.Column("child", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("realm", "parent", "child", name="pk_role_composites"),
)

# A client's own roles (Keycloak's client roles): tokens carry them as resource_access.
client_roles = sa.Table(
    "client_roles",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("description", sa.String(300), nullable=False, default=""),
    sa.UniqueConstraint("realm", "client_id", "name", name="uq_client_roles_name"),
)

# Who holds a client role: an account ("user") or every member of a group ("group").
client_role_grants = sa.Table(
    "client_role_grants",
    metadata,
    sa.Column("role_id", sa.String(36), sa.ForeignKey("client_roles.id", ondelete="CASCADE")),
    sa.Column("holder_kind", sa.String(8), nullable=False),
    sa.Column("holder_id", sa.String(36), nullable=False),
    sa.Column("granted_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("role_id", "holder_kind", "holder_id", name="pk_client_role_grants"),
    sa.Index("ix_client_role_grants_holder", "holder_kind", "holder_id"),
)

# Composite client roles: holding the parent holds the child (resource_access expands them).
client_role_composites = sa.Table(
    "client_role_composites",
    metadata,
    sa.Column("parent_id", sa.String(36), sa.ForeignKey("client_roles.id", ondelete="CASCADE")),
    sa.Column("child_id", sa.String(36), sa.ForeignKey("client_roles.id", ondelete="CASCADE")),
    sa.PrimaryKeyConstraint("parent_id", "child_id", name="pk_client_role_composites"),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("agency_code", sa.String(35), nullable=False, default=""),
    sa.Column("description", sa.String(1000), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.UniqueConstraint("realm", "agency_code", "name", name="uq_groups_name"),
    # Keycloak's group tree: the group it is a subgroup of (None: top level).
    sa.Column("parent_id", sa.String(36), nullable=True, index=True),
)

# Realm roles granted to a group: every member holds them, in the group's agency.
group_realm_roles = sa.Table(
    "group_realm_roles",
    metadata,
    sa.Column("group_id", sa.String(36), sa.ForeignKey("groups.id", ondelete="CASCADE")),
    sa.Column("role", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("group_id", "role", name="pk_group_realm_roles"),
)

group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column("group_id", sa.String(36), sa.ForeignKey("groups.id", ondelete="CASCADE")),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.PrimaryKeyConstraint("group_id", "user_id", name="pk_group_members"),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the Keycloak-style internal id
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("secret_hash", sa.String(64), nullable=True),  # None: public client
    sa.Column("owner_agency_code", sa.String(35), nullable=False, default=""),
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("service_accounts", sa.Boolean, nullable=False, default=False),
    sa.Column("direct_grants", sa.Boolean, nullable=False, default=True),
    sa.Column("service_user_id", sa.String(36), nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("token_ttl", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("secret_rotated_at", sa.Float, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    # Its password grant takes officials' app passwords (a mail server's SMTP/IMAP login).
    sa.Column(
        "allow_app_passwords", sa.Boolean, nullable=False, default=False, server_default=sa.false()
    ),
    # OpenID Connect Back-Channel Logout 1.0: where its logout tokens go ("" = none).
    sa.Column(
        "backchannel_logout_uri", sa.String(2000), nullable=False, default="", server_default=""
    ),
    # Its public keys (a JWK Set, JSON): it then authenticates with private_key_jwt only.
    sa.Column("jwks", sa.Text, nullable=False, default="", server_default=""),
    sa.UniqueConstraint("realm", "client_id", name="uq_clients_client_id"),
)

# Officials' passwords for mail clients that cannot ask for a one-time code (argon2id, like
# account passwords). Revoked rows stay, for the audit trail; only live ones sign in.
app_passwords = sa.Table(
    "app_passwords",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("revoked_reason", sa.String(64), nullable=False, default=""),
    sa.Index("ix_app_passwords_user", "user_id", "revoked_at"),
)

# One sign-in: refresh tokens rotate inside it; reuse of a spent one revokes it all.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the "sid" claim
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(36), nullable=False, index=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(500), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("revoked_reason", sa.String(64), nullable=False, default=""),
    # The browser's SSO session it was started from (None: a direct grant).
    sa.Column("sso_session_id", sa.String(36), nullable=True, index=True),
    # How the user authenticated (OIDC auth_time, acr; amr space-separated, RFC 8176).
    sa.Column("auth_time", sa.Float, nullable=True),
    sa.Column("acr", sa.String(16), nullable=False, default="", server_default=""),
    sa.Column("amr", sa.String(64), nullable=False, default="", server_default=""),
)

# A browser's sign-in (the cookie holds "<id>.<secret>", stored as SHA-256): every client's
# authorization request reuses it, without the form, until it idles out, reaches its
# maximum life or is logged out, which ends every client session started from it.
sso_sessions = sa.Table(
    "sso_sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(36), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("auth_time", sa.Float, nullable=False),
    sa.Column("acr", sa.String(16), nullable=False),
    sa.Column("amr", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("revoked_reason", sa.String(64), nullable=False, default=""),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(36), nullable=False, index=True),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float, nullable=True),
)

auth_codes = sa.Table(
    "auth_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("realm", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("redirect_uri", sa.String(2000), nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=False, default=""),
    sa.Column("challenge_method", sa.String(10), nullable=False, default=""),
    sa.Column("scope", sa.String(500), nullable=False, default=""),
    sa.Column("nonce", sa.String(200), nullable=False, default=""),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float, nullable=True),
    sa.Column("session_id", sa.String(36), nullable=True),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # When a newer key took over; the key stays published until retired_at + max token life.
    sa.Column("retired_at", sa.Float, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(120), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("remote_ip", sa.String(64), nullable=False, default=""),
    sa.Column("details", sa.JSON, nullable=False),
)

# Create requests' request_id → the id they created, so a retried call does not create twice.
idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("result_id", sa.String(64), nullable=False),
    sa.Column("extra", sa.String(200), nullable=False, default=""),
)

# Access tokens revoked before their expiry (RFC 7009); rows are dropped once expired.
revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False),
)


# A realm's settings changed over the admin REST API (domain/realm_settings.py), as JSON over
# the configured defaults; no row: the defaults.
realm_settings = sa.Table(
    "realm_settings",
    metadata,
    sa.Column("realm", sa.String(64), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
