using System.Collections.Concurrent;
using SecureMesh.Cli.Tui;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Cli.Tests.Tui;

/// <summary>An in-memory node for UI tests: sample data, a record of every call, and injectable faults and delays.</summary>
internal sealed class FakeNodeClient : INodeClient
{
    private readonly Lock _gate = new();

    public static readonly string SelfId = PeerIdOf(1).Text;
    public static readonly string AliceId = PeerIdOf(2).Text;
    public static readonly string BobId = PeerIdOf(3).Text;
    public static readonly string MalloryId = PeerIdOf(4).Text;

    public FakeNodeClient()
    {
        Status = new NodeStatusView(SelfId, PeerIdOf(1).Fingerprint, ["0.0.0.0:4747"], 2, true);
        Peers =
        [
            new PeerView(AliceId, "alice", PeerViewState.Trusted, true, PeerIdOf(2).Fingerprint, "tango-lima-42", ["192.0.2.10:4747"]),
            new PeerView(BobId, "bob", PeerViewState.Pending, true, PeerIdOf(3).Fingerprint, "echo-kilo-17", ["192.0.2.11:4747"]),
            new PeerView(MalloryId, "mallory", PeerViewState.Blocked, false, PeerIdOf(4).Fingerprint, null, [], "spam"),
        ];
        Shares =
        [
            new ShareView("/srv/films", 12, 3L << 30, 6L << 30, true),
            new ShareView("/home/me/notes.txt", 1, 2048, 2048, false, "family"),
        ];
        SearchResults =
        [
            new SearchResultView("b3:1111aaaa", "holiday.mkv", 700L << 20, [AliceId, BobId]),
            new SearchResultView("b3:2222bbbb", "holiday-notes.txt", 1200, [AliceId]),
        ];
        Transfers =
        [
            new TransferView("b3:1111aaaa", "holiday.mkv", 350L << 20, 700L << 20, 2.5 * (1 << 20), 2, TimeSpan.FromSeconds(140), TransferViewState.Downloading),
        ];
        Quarantine =
        [
            new QuarantineItemView("q1", "b3:3333cccc", "setup.exe", "infected", "scanner: Win.Test.EICAR", 68, BobId, DateTimeOffset.UnixEpoch),
        ];
        Log =
        [
            new LogEntryView(1, DateTimeOffset.UnixEpoch, "peer.trusted", AliceId, "trusted alice"),
            new LogEntryView(2, DateTimeOffset.UnixEpoch.AddMinutes(1), "peer.blocked", MalloryId, "reason: spam"),
            new LogEntryView(3, DateTimeOffset.UnixEpoch.AddMinutes(2), "quarantine.held", BobId, "setup.exe infected"),
        ];
        Verification = new LogVerificationView(true, 3, null, null);
    }

    public NodeStatusView Status { get; set; }

    public List<PeerView> Peers { get; }

    public List<ShareView> Shares { get; }

    public List<GroupView> Groups { get; } = [new GroupView("family", [new GroupMemberView(AliceId, "alice", "trusted")])];

    public List<SearchResultView> SearchResults { get; }

    public List<TransferView> Transfers { get; }

    public List<QuarantineItemView> Quarantine { get; }

    public List<LogEntryView> Log { get; }

    public LogVerificationView Verification { get; set; }

    /// <summary>Every call as "Method arg1 arg2…", in order.</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    /// <summary>Method name → the exception that method throws from now on.</summary>
    public ConcurrentDictionary<string, Exception> Faults { get; } = new();

    /// <summary>Method name → how long it takes (honouring cancellation).</summary>
    public ConcurrentDictionary<string, TimeSpan> Delays { get; } = new();

    public bool Called(string prefix) => Calls.Any(c => c.StartsWith(prefix, StringComparison.Ordinal));

    public static PeerId PeerIdOf(byte seed)
    {
        var key = new byte[PeerId.PublicKeyLength];
        Array.Fill(key, seed);
        return PeerId.FromPublicKey(key);
    }

    private async Task<T> Call<T>(string method, Func<T> body, CancellationToken cancellationToken, params object?[] args)
    {
        Calls.Enqueue(string.Join(' ', [method, .. args.Select(a => a?.ToString() ?? "null")]));
        if (Delays.TryGetValue(method, out var delay))
        {
            await Task.Delay(delay, cancellationToken);
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (Faults.TryGetValue(method, out var fault))
        {
            throw fault;
        }
        lock (_gate)
        {
            return body();
        }
    }

    private Task Do(string method, Action body, CancellationToken cancellationToken, params object?[] args) =>
        Call(method, () =>
        {
            body();
            return true;
        }, cancellationToken, args);

    public Task<NodeStatusView> GetStatusAsync(CancellationToken cancellationToken) => Call(nameof(GetStatusAsync), () => Status, cancellationToken);

    public Task<IReadOnlyList<PeerView>> ListPeersAsync(CancellationToken cancellationToken) =>
        Call<IReadOnlyList<PeerView>>(nameof(ListPeersAsync), () => [.. Peers], cancellationToken);

    public Task AddPeerAsync(string peerId, string? address, string? name, bool trust, CancellationToken cancellationToken) =>
        Do(nameof(AddPeerAsync), () => Peers.Add(new PeerView(peerId, name, trust ? PeerViewState.Trusted : PeerViewState.Pending, false,
            PeerId.Parse(peerId).Fingerprint, null, address is null ? [] : [address])), cancellationToken, peerId, address, name, trust);

    public Task TrustAsync(string peerId, CancellationToken cancellationToken) =>
        Do(nameof(TrustAsync), () => Update(peerId, p => p with { State = PeerViewState.Trusted }), cancellationToken, peerId);

    public Task BlockAsync(string peerId, string? reason, CancellationToken cancellationToken) =>
        Do(nameof(BlockAsync), () => Update(peerId, p => p with { State = PeerViewState.Blocked, BlockReason = reason }), cancellationToken, peerId, reason);

    public Task UnblockAsync(string peerId, CancellationToken cancellationToken) =>
        Do(nameof(UnblockAsync), () => Update(peerId, p => p with { State = PeerViewState.Pending }), cancellationToken, peerId);

    public Task RenameAsync(string peerId, string name, CancellationToken cancellationToken) =>
        Do(nameof(RenameAsync), () => Update(peerId, p => p with { Name = name }), cancellationToken, peerId, name);

    public Task RemoveAsync(string peerId, CancellationToken cancellationToken) =>
        Do(nameof(RemoveAsync), () => Peers.RemoveAll(p => p.PeerId == peerId), cancellationToken, peerId);

    public Task<IReadOnlyList<ShareView>> ListSharesAsync(CancellationToken cancellationToken) =>
        Call<IReadOnlyList<ShareView>>(nameof(ListSharesAsync), () => [.. Shares], cancellationToken);

    public Task AddShareAsync(string path, string audience, CancellationToken cancellationToken) =>
        Do(nameof(AddShareAsync), () => Shares.Add(new ShareView(path, 0, 0, 0, true, audience)), cancellationToken, path, audience);

    public Task SetShareAudienceAsync(string path, string audience, CancellationToken cancellationToken) =>
        Do(nameof(SetShareAudienceAsync), () =>
        {
            var i = Shares.FindIndex(s => s.Path == path);
            Shares[i] = Shares[i] with { Audience = audience };
        }, cancellationToken, path, audience);

    public Task<IReadOnlyList<GroupView>> ListGroupsAsync(CancellationToken cancellationToken) =>
        Call<IReadOnlyList<GroupView>>(nameof(ListGroupsAsync), () => [.. Groups], cancellationToken);

    public Task CreateGroupAsync(string name, CancellationToken cancellationToken) =>
        Do(nameof(CreateGroupAsync), () => Groups.Add(new GroupView(name, [])), cancellationToken, name);

    public Task DeleteGroupAsync(string name, CancellationToken cancellationToken) =>
        Do(nameof(DeleteGroupAsync), () => Groups.RemoveAll(g => g.Name == name), cancellationToken, name);

    public Task AddGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken) =>
        Do(nameof(AddGroupMembersAsync), () =>
        {
            var i = Groups.FindIndex(g => g.Name == name);
            var added = peerIds.Select(id => Peers.First(p => p.PeerId == id)).Select(p => new GroupMemberView(p.PeerId, p.Name, Fmt.State(p.State)));
            Groups[i] = Groups[i] with { Members = [.. Groups[i].Members, .. added] };
        }, cancellationToken, name, string.Join(',', peerIds));

    public Task RemoveGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken) =>
        Do(nameof(RemoveGroupMembersAsync), () =>
        {
            var i = Groups.FindIndex(g => g.Name == name);
            Groups[i] = Groups[i] with { Members = [.. Groups[i].Members.Where(m => !peerIds.Contains(m.PeerId))] };
        }, cancellationToken, name, string.Join(',', peerIds));

    public Task RemoveShareAsync(string path, CancellationToken cancellationToken) =>
        Do(nameof(RemoveShareAsync), () => Shares.RemoveAll(s => s.Path == path), cancellationToken, path);

    public Task<IReadOnlyList<SearchResultView>> SearchAsync(string terms, CancellationToken cancellationToken) =>
        Call<IReadOnlyList<SearchResultView>>(nameof(SearchAsync),
            () => [.. SearchResults.Where(r => r.Name.Contains(terms, StringComparison.OrdinalIgnoreCase))], cancellationToken, terms);

    public Task<IReadOnlyList<TransferView>> ListTransfersAsync(CancellationToken cancellationToken) =>
        Call<IReadOnlyList<TransferView>>(nameof(ListTransfersAsync), () => [.. Transfers], cancellationToken);

    public Task FetchAsync(string contentId, CancellationToken cancellationToken) =>
        Do(nameof(FetchAsync), () => { }, cancellationToken, contentId);

    public Task CancelTransferAsync(string contentId, CancellationToken cancellationToken) =>
        Do(nameof(CancelTransferAsync), () =>
        {
            var i = Transfers.FindIndex(t => t.ContentId == contentId);
            Transfers[i] = Transfers[i] with { State = TransferViewState.Cancelled, BytesPerSecond = 0 };
        }, cancellationToken, contentId);

    public Task<IReadOnlyList<QuarantineItemView>> ListQuarantineAsync(CancellationToken cancellationToken) =>
        Call<IReadOnlyList<QuarantineItemView>>(nameof(ListQuarantineAsync), () => [.. Quarantine], cancellationToken);

    public Task ReleaseAsync(string id, string? toDirectory, CancellationToken cancellationToken) =>
        Do(nameof(ReleaseAsync), () => Quarantine.RemoveAll(q => q.Id == id), cancellationToken, id, toDirectory);

    public Task DeleteAsync(string id, CancellationToken cancellationToken) =>
        Do(nameof(DeleteAsync), () => Quarantine.RemoveAll(q => q.Id == id), cancellationToken, id);

    public Task<IReadOnlyList<LogEntryView>> ListLogAsync(int limit, CancellationToken cancellationToken) =>
        Call<IReadOnlyList<LogEntryView>>(nameof(ListLogAsync), () => [.. Log.TakeLast(limit)], cancellationToken, limit);

    public Task<LogVerificationView> VerifyLogAsync(CancellationToken cancellationToken) =>
        Call(nameof(VerifyLogAsync), () => Verification, cancellationToken);

    /// <summary>The backup part on a real data directory (the real stores), or null: nothing is backed up, and changes fail.</summary>
    public HomeBackups? Backups { get; init; }

    private HomeBackups RealBackups => Backups ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, "no backups in this fake");

    public Task<BackupsView> GetBackupsAsync(CancellationToken cancellationToken) =>
        Call(nameof(GetBackupsAsync), () => Backups?.GetAsync(cancellationToken).GetAwaiter().GetResult() ?? new BackupsView([], [], new Dictionary<string, string>()), cancellationToken);

    public Task AddBackupAsync(string path, IReadOnlyList<string> holders, int? copies, string? keep, CancellationToken cancellationToken) =>
        Do(nameof(AddBackupAsync), () => RealBackups.AddAsync(path, holders, copies, keep, cancellationToken).GetAwaiter().GetResult(), cancellationToken, path, string.Join(",", holders), copies, keep);

    public Task RemoveBackupAsync(string path, CancellationToken cancellationToken) =>
        Do(nameof(RemoveBackupAsync), () => RealBackups.RemoveAsync(path, cancellationToken).GetAwaiter().GetResult(), cancellationToken, path);

    public Task CheckBackupsAsync(CancellationToken cancellationToken) =>
        Do(nameof(CheckBackupsAsync), () => RealBackups.CheckAsync(cancellationToken).GetAwaiter().GetResult(), cancellationToken);

    private void Update(string peerId, Func<PeerView, PeerView> change)
    {
        var i = Peers.FindIndex(p => p.PeerId == peerId);
        if (i < 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no such peer: {peerId}");
        }
        Peers[i] = change(Peers[i]);
    }
}
