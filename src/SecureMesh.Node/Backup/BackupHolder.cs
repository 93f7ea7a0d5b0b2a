using System.Buffers;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Backup;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Backup;

/// <summary>
/// The holder's side of <c>/securemesh/backup/1.0.0</c>: serves one owner's stream, request by request. Every request is
/// checked again (the peer is trusted and has an offer: a revocation or a block applies to the next request); a blob is
/// stored only under the BLAKE3 of its bytes and only within the owner's quota, checked in the transaction that records it.
/// A malformed request is answered BadRequest and the stream reset; an idle stream is closed.
/// </summary>
internal sealed class BackupHolder(SecureMeshDatabase db, HeldBlobStore store, TimeProvider time, ILogger logger)
{
    /// <summary>How long a stream may sit idle between requests.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(60);

    public HeldBlobStore Store => store;

    /// <summary>True when <paramref name="peer"/> may use the protocol now.</summary>
    public bool Allows(PeerId peer) => db.Trust.GetPeer(peer)?.State == PeerState.Trusted && db.Backup.HasOffer(peer);

    /// <summary>Serves one stream until the owner closes it.</summary>
    public async Task ServeAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        var owner = session.PeerId;
        // Not disposed here: the router closes the stream politely after the last answer (a dispose would reset it and
        // could drop that answer unread).
        var messages = new MessageStream(stream, BackupWire.MaxMessage);
        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            idle.CancelAfter(IdleTimeout);
            using var message = await messages.ReceiveAsync(idle.Token).ConfigureAwait(false);
            if (message is null)
            {
                return;
            }
            if (!Allows(owner))
            {
                BackupLog.Refused(logger, owner.Text, "no offer, or not trusted");
                await messages.SendAsync(BackupWire.Error(BackupStatus.NotAllowed, "no backup offer for this peer"), cancellationToken).ConfigureAwait(false);
                return;
            }
            if (!BackupWire.TryParseRequest(message.Memory, out var request, out var error))
            {
                BackupLog.Refused(logger, owner.Text, error);
                await messages.SendAsync(BackupWire.Error(BackupStatus.BadRequest, error), cancellationToken).ConfigureAwait(false);
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"a malformed backup request: {error}");
            }
            var answer = Handle(owner, request);
            await messages.SendAsync(answer, cancellationToken).ConfigureAwait(false);
        }
    }

    private byte[] Handle(PeerId owner, BackupRequest request)
    {
        switch (request.Op)
        {
            case BackupOp.Put:
            {
                var id = BlobId.FromBytes(request.Id.Span);
                if (!id.Matches(request.Data.Span))
                {
                    return BackupWire.Error(BackupStatus.BadRequest, "the blob does not hash to its ID");
                }
                var name = id.ToString();
                var result = db.Backup.ReserveHeld(owner, name, request.Data.Length);
                switch (result)
                {
                    case HoldResult.NoOffer:
                        return BackupWire.Error(BackupStatus.NotAllowed, "no backup offer for this peer");
                    case HoldResult.QuotaExceeded:
                        BackupLog.QuotaFull(logger, owner.Text, request.Data.Length);
                        return BackupWire.Error(BackupStatus.QuotaExceeded, "the blob would exceed the quota offered");
                    case HoldResult.AlreadyHeld when store.Exists(owner, name):
                        return BackupWire.Ok();
                }
                try
                {
                    store.Write(owner, name, request.Data.Span);
                }
                catch
                {
                    db.Backup.RemoveHeld(owner, name);
                    throw;
                }
                return BackupWire.Ok();
            }
            case BackupOp.Get:
            {
                var name = BlobId.FromBytes(request.Id.Span).ToString();
                var data = db.Backup.IsHeld(owner, name) ? store.Read(owner, name, BackupWire.MaxBlob) : null;
                return data is null ? BackupWire.Error(BackupStatus.NotFound, "no such blob") : BackupWire.Ok(data);
            }
            case BackupOp.Delete:
            {
                var name = BlobId.FromBytes(request.Id.Span).ToString();
                db.Backup.RemoveHeld(owner, name);
                store.Delete(owner, name);
                return BackupWire.Ok();
            }
            case BackupOp.List:
            {
                var after = request.Id.IsEmpty ? null : BlobId.FromBytes(request.Id.Span).ToString();
                var held = db.Backup.ListHeld(owner, after, BackupWire.MaxListEntries + 1);
                var page = held.Take(BackupWire.MaxListEntries).Select(h => (BlobId.Parse(h.BlobId), h.Size)).ToList();
                return BackupWire.Ok(BackupWire.ListPayload(page, held.Count > BackupWire.MaxListEntries));
            }
            case BackupOp.Prove:
            {
                var name = BlobId.FromBytes(request.Id.Span).ToString();
                var range = ArrayPool<byte>.Shared.Rent(request.Length);
                try
                {
                    if (!db.Backup.IsHeld(owner, name) || !store.ReadRange(owner, name, request.Offset, range.AsSpan(0, request.Length)))
                    {
                        return BackupWire.Error(BackupStatus.NotFound, "no such blob, or the range is outside it");
                    }
                    var answer = new byte[ProofChallenge.HashLength];
                    ProofChallenge.Answer(request.Nonce.Span, request.Offset, range.AsSpan(0, request.Length), answer);
                    return BackupWire.Ok(answer);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(range);
                }
            }
            case BackupOp.PutRoot:
            {
                switch (db.Backup.ReserveRoot(owner, request.Data.Length))
                {
                    case HoldResult.NoOffer:
                        return BackupWire.Error(BackupStatus.NotAllowed, "no backup offer for this peer");
                    case HoldResult.QuotaExceeded:
                        return BackupWire.Error(BackupStatus.QuotaExceeded, "the catalog would exceed the quota offered");
                }
                store.Write(owner, HeldBlobStore.RootName, request.Data.Span);
                return BackupWire.Ok();
            }
            case BackupOp.GetRoot:
            {
                var root = store.Read(owner, HeldBlobStore.RootName, BackupCatalog.MaxSealedSize);
                return root is null ? BackupWire.Error(BackupStatus.NotFound, "no catalog stored") : BackupWire.Ok(root);
            }
            case BackupOp.Usage:
            {
                var offer = db.Backup.GetOffer(owner);
                return offer is null ? BackupWire.Error(BackupStatus.NotAllowed, "no backup offer for this peer") : BackupWire.Ok(BackupWire.UsagePayload(offer.Quota, offer.Used));
            }
            default:
                return BackupWire.Error(BackupStatus.BadRequest, "unknown request");
        }
    }

    /// <summary>Withdraws an offer and deletes what was held for the peer.</summary>
    public bool Revoke(PeerId owner)
    {
        var revoked = db.Backup.Revoke(owner);
        store.DeleteOwner(owner);
        return revoked;
    }

    internal TimeProvider Time => time;
}
