using System.Net;
using SecureMesh.Core.Libp2p;

namespace SecureMesh.Node.Network;

/// <summary>Claims an authenticated inbound connection that is not meant to become a session (an AutoNAT dial-back).</summary>
internal interface ISideConnections
{
    /// <summary>True when the connection was taken (the taker serves and closes it); false leaves it to authorization.</summary>
    bool TryTake(MeshNode node, UpgradedConnection connection, IPEndPoint? remote);
}
