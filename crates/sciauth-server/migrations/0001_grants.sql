-- One row per grant (issuer, client, account): the grant's versioned JSON (sciauth-tokens'
-- StoredGrant, refresh token and access tokens), and the times the service purges by.
-- Times are Unix seconds.
CREATE TABLE sciauth_grants (
    issuer             text   NOT NULL,
    client_id          text   NOT NULL,
    account            text   NOT NULL,
    grant_json         jsonb  NOT NULL,
    -- When the refresh token expires, if known.
    refresh_expires_at bigint,
    -- After this the grant holds nothing usable: its refresh token has expired, or it has
    -- none and its last access token has expired. NULL: never (a refresh token of unknown
    -- expiry).
    purge_after        bigint,
    updated_at         bigint NOT NULL,
    PRIMARY KEY (issuer, client_id, account)
);

CREATE INDEX sciauth_grants_purge_after ON sciauth_grants (purge_after)
    WHERE purge_after IS NOT NULL;
