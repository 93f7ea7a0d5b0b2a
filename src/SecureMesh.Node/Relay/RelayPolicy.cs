using SecureMesh.Core.Libp2p.Relay;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Relay;

/// <summary>
/// The relay's rule on top of the node's policy: the hop protocol is offered (and announced in identify) only while
/// relay service is on, and never over a relayed connection (circuits do not nest); everything else as the node's policy says.
/// </summary>
internal sealed class RelayPolicy(IProtocolPolicy? inner, Func<RelaySettings> settings) : IProtocolPolicy
{
    private readonly IProtocolPolicy _inner = inner ?? TrustedPeersPolicy.Instance;

    public bool Allows(PeerSession session, string protocol)
    {
        if (string.Equals(protocol, CircuitRelay.HopProtocolId, StringComparison.Ordinal)
            && (settings().Mode == RelayServiceMode.Off || session.Path == ConnectionPath.Relayed))
        {
            return false;
        }
        return _inner.Allows(session, protocol);
    }
}
