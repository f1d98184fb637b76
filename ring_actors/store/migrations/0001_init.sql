CREATE TABLE deployment (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    runtime TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    restart_count INTEGER NOT NULL DEFAULT 0,
    parent_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX deployment_ns_name ON deployment(namespace, name);
CREATE INDEX deployment_status ON deployment(status);

CREATE TABLE deployment_event (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    seq INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    component TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX deployment_event_dep ON deployment_event(deployment_id, seq);

CREATE TABLE health_check (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    instance_id TEXT,
    check_index INTEGER,
    check_type TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX health_check_dep ON health_check(deployment_id, seq);

CREATE TABLE namespace (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT
);

CREATE TABLE user (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT,
    login_at TEXT
);

CREATE TABLE token (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    namespaces TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expire_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX token_user ON token(user_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    seq INTEGER NOT NULL,
    user_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_name TEXT NOT NULL,
    namespace TEXT
);
CREATE INDEX audit_log_ns ON audit_log(namespace, seq);

CREATE TABLE secret (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE(namespace, name)
);

CREATE TABLE config (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    labels TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    UNIQUE(namespace, name)
);

CREATE TABLE volume (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    backend TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE(namespace, name)
);
