using SecureMesh.Core.Backup;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Backup;

/// <summary>
/// The protocol policy with backup: <c>/securemesh/backup/1.0.0</c> is offered (in multistream-select and identify) only to
/// a trusted peer this node made an offer to; any other protocol is left to the inner policy. The handler checks again
/// on every request.
/// </summary>
internal sealed class BackupPolicy(BackupHolder holder, IProtocolPolicy? inner) : IProtocolPolicy
{
    public bool Allows(PeerSession session, string protocol) => string.Equals(protocol, BackupWire.ProtocolId, StringComparison.Ordinal)
        ? holder.Allows(session.PeerId)
        : (inner ?? TrustedPeersPolicy.Instance).Allows(session, protocol);
}
