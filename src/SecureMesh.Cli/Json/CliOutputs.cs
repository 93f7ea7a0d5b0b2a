namespace SecureMesh.Cli.Json;

// The shapes of the --json outputs that are not a control API record printed as it is. The property order is the key
// order, and the names are the keys in camelCase: design.md fixes some of them, and scripts rely on all of them.

/// <summary><c>init</c>, <c>id</c>, <c>keys import</c>.</summary>
internal sealed record IdentityJson(string PeerId, string Fingerprint, IReadOnlyList<string> Listen, IReadOnlyList<string> Multiaddrs, bool Encrypted, string Home);

/// <summary><c>peers unblock</c>: what the peer is now.</summary>
internal sealed record PeerStateJson(string PeerId, string Fingerprint, string State);

/// <summary><c>share add</c>: what indexing the path did; <see cref="Seconds"/> is null when a running node indexed it.</summary>
internal sealed record ShareResultJson(string Path, int Files, int Indexed, int Unchanged, int Removed, long BytesHashed, double? Seconds, IReadOnlyList<string> Failed, int Skipped);

/// <summary><c>share list</c>.</summary>
internal sealed record ShareListJson(IEnumerable<string> Shares, IEnumerable<ShareAudienceJson> Audiences, IEnumerable<SharedFileJson> Files, IEnumerable<string> IncludeHidden);

/// <summary>A shared path and who may see it, in <see cref="ShareListJson"/>.</summary>
internal sealed record ShareAudienceJson(string Path, string Audience);

/// <summary>An indexed file in <see cref="ShareListJson"/>.</summary>
internal sealed record SharedFileJson(string Path, string Name, long Size, string ContentId, string Share, string Audience);

/// <summary><c>share list --skipped</c>.</summary>
internal sealed record SkippedListJson(IEnumerable<SkippedJson> Skipped);

/// <summary>An entry not shared, and why, in <see cref="SkippedListJson"/>.</summary>
internal sealed record SkippedJson(string Path, string Reason, string Share);

/// <summary><c>share remove</c>, <c>backup remove</c>.</summary>
internal sealed record PathRemovedJson(string Path, bool Removed);

/// <summary><c>groups delete</c>.</summary>
internal sealed record GroupDeletedJson(string Name, bool Deleted);

/// <summary>A download in <c>transfers list</c> (<see cref="Id"/> is its content ID, what <c>transfers cancel</c> takes).</summary>
internal sealed record TransferJson(string Id, string ContentId, string? Name, string State, long BytesDone, long BytesTotal, double BytesPerSecond, int Peers,
    bool Finished, string? Reason, string? Path, long? QuarantineId);

/// <summary><c>transfers cancel</c>.</summary>
internal sealed record TransferCancelledJson(string Id, bool Cancelled);

/// <summary>A hit of <c>search</c>.</summary>
internal sealed record SearchHitJson(string ContentId, string Name, long Size, IReadOnlyList<string> Peers);

/// <summary>An item of <c>quarantine list</c>, <c>show</c>, <c>release</c>.</summary>
internal sealed record QuarantineJson(long Id, string ContentId, string Name, string State, string? Reason, string? AnnouncedName, long Size, bool Verified,
    string? Publisher, IEnumerable<string> Sources, string? Path, string? ReleasedPath, DateTimeOffset Created, DateTimeOffset Updated);

/// <summary><c>backup offer</c>.</summary>
internal sealed record BackupOfferJson(string PeerId, long Quota);

/// <summary>An offer in <c>backup offers</c>.</summary>
internal sealed record BackupOfferEntryJson(string PeerId, string? Name, long Quota, long Used, DateTimeOffset Created);

/// <summary><c>backup revoke</c>.</summary>
internal sealed record BackupRevokedJson(string PeerId, bool Revoked);

/// <summary><c>backup add</c> while a node runs (it uploads).</summary>
internal sealed record BackupAddJson(string Path, IEnumerable<string> Holders, int Copies, string Keep);

/// <summary>A backed-up path in <c>backup list</c>.</summary>
internal sealed record BackupListEntryJson(string Path, IEnumerable<string> Holders, int Copies, string Keep, int Files, long Bytes);

/// <summary>A holder's outcome in <c>backup check</c>.</summary>
internal sealed record BackupCheckJson(string PeerId, bool Ok, string? Reason);

/// <summary><c>backup add</c> run here or with <c>--wait</c>: how many holders have everything.</summary>
internal sealed record BackupOutcomeJson(string Path, int Complete, int Copies, IEnumerable<BackupOutcomeHolderJson> Holders);

/// <summary>A holder in <see cref="BackupOutcomeJson"/>.</summary>
internal sealed record BackupOutcomeHolderJson(string PeerId, string State, long Bytes, string? Reason);

/// <summary><c>restore</c>.</summary>
internal sealed record RestoreJson(long Catalog, int Files, long Bytes, int AlreadyThere, int Peers, IReadOnlyList<string> Problems);
