using SecureMesh.Core;
using SecureMesh.Core.Backup;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Backup;

/// <summary>The owner's side of one <c>/securemesh/backup/1.0.0</c> stream to a holder: one request at a time, each with a deadline.</summary>
internal sealed class BackupConnection : IAsyncDisposable
{
    /// <summary>How long one request may take.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(60);

    private readonly MessageStream _messages;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private BackupConnection(PeerId holder, MessageStream messages)
    {
        Holder = holder;
        _messages = messages;
    }

    public PeerId Holder { get; }

    /// <summary>Opens a backup stream on an open session.</summary>
    public static async Task<BackupConnection> OpenAsync(PeerSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        try
        {
            var stream = await session.OpenStreamAsync(BackupWire.ProtocolId, cancellationToken).ConfigureAwait(false);
            return new BackupConnection(session.PeerId, new MessageStream(stream, BackupWire.MaxMessage));
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.NotFound)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{session.PeerId} offers no backup space to this node", e);
        }
    }

    /// <summary>Sends one request and returns the answer's payload (copied), or throws per <see cref="BackupWire.Payload"/>.</summary>
    public async Task<byte[]> CallAsync(byte[] request, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(RequestTimeout);
            await _messages.SendAsync(request, deadline.Token).ConfigureAwait(false);
            using var answer = await _messages.ReceiveAsync(deadline.Token).ConfigureAwait(false)
                ?? throw new SecureMeshException(SecureMeshErrorKind.Network, $"{Holder} closed the backup stream");
            return BackupWire.Payload(answer.Memory).ToArray();
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task PutAsync(BlobId id, ReadOnlySpan<byte> blob, CancellationToken cancellationToken) =>
        CallAsync(BackupWire.Request(BackupOp.Put, id, blob), cancellationToken);

    /// <summary>Fetches a blob and checks it hashes to its ID (Protocol exception when it does not).</summary>
    public async Task<byte[]> GetAsync(BlobId id, CancellationToken cancellationToken)
    {
        var blob = await CallAsync(BackupWire.Request(BackupOp.Get, id), cancellationToken).ConfigureAwait(false);
        return id.Matches(blob) ? blob : throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"{Holder} returned blob {id} altered");
    }

    public Task DeleteAsync(BlobId id, CancellationToken cancellationToken) => CallAsync(BackupWire.Request(BackupOp.Delete, id), cancellationToken);

    public async Task<byte[]> ProveAsync(BlobId id, ProofChallenge challenge, CancellationToken cancellationToken)
    {
        var answer = await CallAsync(BackupWire.ProveRequest(id, challenge), cancellationToken).ConfigureAwait(false);
        return answer.Length == ProofChallenge.HashLength ? answer : throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"{Holder} answered a proof with {answer.Length} bytes");
    }

    public Task PutRootAsync(ReadOnlySpan<byte> root, CancellationToken cancellationToken) => CallAsync(BackupWire.Request(BackupOp.PutRoot, null, root), cancellationToken);

    /// <summary>The owner's root, or null when the holder has none.</summary>
    public async Task<byte[]?> GetRootAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await CallAsync(BackupWire.Request(BackupOp.GetRoot), cancellationToken).ConfigureAwait(false);
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>Every blob the holder lists for this owner.</summary>
    public async Task<Dictionary<string, long>> ListAsync(CancellationToken cancellationToken)
    {
        var all = new Dictionary<string, long>(StringComparer.Ordinal);
        BlobId? after = null;
        while (true)
        {
            var payload = await CallAsync(BackupWire.Request(BackupOp.List, after), cancellationToken).ConfigureAwait(false);
            var (entries, more) = BackupWire.ParseList(payload);
            foreach (var (id, size) in entries)
            {
                all[id.ToString()] = size;
            }
            if (!more || entries.Count == 0 || all.Count > 10_000_000)
            {
                return all;
            }
            after = entries[^1].Id;
        }
    }

    public async Task<(long Quota, long Used)> UsageAsync(CancellationToken cancellationToken) =>
        BackupWire.ParseUsage(await CallAsync(BackupWire.Request(BackupOp.Usage), cancellationToken).ConfigureAwait(false));

    public async ValueTask DisposeAsync()
    {
        await _messages.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }
}
