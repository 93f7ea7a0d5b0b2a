using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// The manifests of a swarm download: every valid one the peers give, and the peers a manifest refuted. The first is the
/// one the download uses; the others name further publishers of the same content.
/// </summary>
/// <param name="Offered">Each valid manifest with its sender, in the order the peers were given; never empty.</param>
/// <param name="Refuted">Peers whose manifest claimed a layout chunk 0 disproved: no source for this download.</param>
internal sealed record ResolvedManifests(IReadOnlyList<(Manifest Manifest, ProtocolSession Peer)> Offered, IReadOnlyList<PeerId> Refuted)
{
    /// <summary>The manifest the download follows.</summary>
    public Manifest Manifest => Offered[0].Manifest;
}

/// <summary>
/// Gets the manifest of a content ID from peers and verifies it: it must decode, carry a valid publisher signature and
/// name the content asked for; a bad one is audited <c>manifest.rejected</c>. When valid manifests disagree on the
/// layout, chunk 0 settles which is true (see <see cref="SettleLayoutAsync"/>).
/// </summary>
internal sealed class ManifestResolver(ContentId id, Action<PeerId, string> audit)
{
    /// <summary>Asks every peer at once; throws <see cref="SecureMeshException"/> when none is connected or none gave a valid manifest.</summary>
    public async Task<ResolvedManifests> ResolveAsync(IReadOnlyList<ProtocolSession> peers, CancellationToken ct)
    {
        var offered = await FetchAsync(peers, ct).ConfigureAwait(false);
        return await SettleLayoutAsync(offered, ct).ConfigureAwait(false);
    }

    /// <summary>Every valid manifest the peers give (asked in parallel) with its sender, in the order of <paramref name="peers"/>.</summary>
    private async Task<List<(Manifest Manifest, ProtocolSession Peer)>> FetchAsync(IReadOnlyList<ProtocolSession> peers, CancellationToken ct)
    {
        if (peers.Count == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, "no trusted peer is connected");
        }
        var answers = await Task.WhenAll(peers.Select(async peer =>
        {
            try
            {
                var bytes = await peer.GetManifestAsync(id, ct).ConfigureAwait(false);
                Manifest manifest;
                try
                {
                    manifest = Manifest.Decode(bytes);
                }
                catch (SecureMeshException e)
                {
                    return Reject(peer.PeerId, e.Message);
                }
                if (!manifest.Verify())
                {
                    return Reject(peer.PeerId, "manifest signature does not verify");
                }
                if (manifest.ContentId != id)
                {
                    return Reject(peer.PeerId, $"manifest is for {manifest.ContentId}");
                }
                // Its chunk count is within ChunkLayout.MaxChunkCount: Manifest.Decode refuses more, before anything is sized by it.
                return (Manifest: manifest, Error: (string?)null);
            }
            catch (Exception e) when (e is SecureMeshException or TimeoutException)
            {
                return (Manifest: (Manifest?)null, Error: $"{peer.PeerId}: {e.Message}");
            }
        })).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        var valid = answers.Zip(peers).Where(a => a.First.Manifest is not null).Select(a => (a.First.Manifest!, a.Second)).ToList();
        if (valid.Count == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound,
                $"no peer gave a valid manifest for {id} ({string.Join("; ", answers.Select(a => a.Error))})");
        }
        return valid;

        (Manifest? Manifest, string? Error) Reject(PeerId peer, string why)
        {
            audit(peer, $"content={id} reason={why}");
            return (null, $"{peer}: {why}");
        }
    }

    /// <summary>
    /// When the peers' manifests disagree on the file size or chunk size, only one layout can be true (the content ID
    /// binds both), and taking a lying one would make every honest peer's chunks fail and the honest peers be blamed.
    /// Peers are asked for chunk 0 one at a time until a reply verifies under one of the layouts: that layout is the
    /// true one. Manifests with another layout are rejected and audited, and their senders left out of this download.
    /// </summary>
    private async Task<ResolvedManifests> SettleLayoutAsync(List<(Manifest Manifest, ProtocolSession Peer)> offered, CancellationToken ct)
    {
        var layouts = offered.Select(o => (o.Manifest.Size, o.Manifest.ChunkSize)).Distinct().ToList();
        if (layouts.Count == 1)
        {
            return new ResolvedManifests(offered, []);
        }
        (long Size, int ChunkSize)? proven = null;
        foreach (var peer in offered.Select(o => o.Peer).Distinct())
        {
            try
            {
                using var reply = await peer.GetChunkAsync(id, 0, ct).ConfigureAwait(false);
                proven = layouts.Cast<(long Size, int ChunkSize)?>().FirstOrDefault(l => reply.Index == 0
                    && ContentVerifier.VerifyChunk(id, l!.Value.Size, l.Value.ChunkSize, 0, reply.Data.Span, reply.Proof));
            }
            catch (Exception e) when (e is SecureMeshException or TimeoutException or IOException or ObjectDisposedException)
            {
                // This peer cannot settle it; ask the next.
            }
            if (proven is not null)
            {
                break;
            }
        }
        if (proven is not { } truth)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound,
                $"peers disagree on the size of {id} ({string.Join(", ", layouts.Select(l => $"{l.Size} bytes in {l.ChunkSize}-byte chunks"))}) and none proved its first chunk");
        }
        var refuted = new List<PeerId>();
        foreach (var (manifest, peer) in offered.Where(o => (o.Manifest.Size, o.Manifest.ChunkSize) != truth))
        {
            audit(peer.PeerId,
                $"content={id} reason=claims {manifest.Size} bytes in {manifest.ChunkSize}-byte chunks; chunk 0 proves {truth.Size} bytes in {truth.ChunkSize}-byte chunks");
            refuted.Add(peer.PeerId);
        }
        return new ResolvedManifests([.. offered.Where(o => (o.Manifest.Size, o.Manifest.ChunkSize) == truth)], refuted);
    }
}
