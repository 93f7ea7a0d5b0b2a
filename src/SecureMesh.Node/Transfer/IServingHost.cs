using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// What the protocol handlers (a peer's <see cref="ProtocolSession"/>, the search stream) call to serve a peer, and
/// nothing more: who may see what, what is blocked, the catalog, the upload limit. The node's
/// <see cref="TransferService"/> implements it; a test drives a handler with a small fake.
/// </summary>
internal interface IServingHost
{
    /// <summary>True when <paramref name="contentId"/> is in a share <paramref name="peer"/> may see (asked before and during every serve).</summary>
    bool CanSee(PeerId peer, string contentId);

    /// <summary>True when the user blocked <paramref name="contentId"/>: served to no one.</summary>
    bool IsBlocked(string contentId);

    /// <summary>Catalog entries whose names contain every term, one per content ID, only from paths <paramref name="peer"/> may see.</summary>
    IReadOnlyList<CatalogEntry> Search(PeerId peer, string query, int limit);

    /// <summary>The indexed file holding <paramref name="id"/> in a share <paramref name="peer"/> may see; null when none.</summary>
    SharedContent? Find(PeerId peer, ContentId id);

    /// <summary>The file behind <paramref name="content"/> no longer matches its index: re-index it in the background.</summary>
    void ContentChanged(SharedContent content);

    /// <summary>The per-peer upload limit in bytes per second (0: none).</summary>
    long UploadLimit();
}
