// Package layout is the geometry of server-side composition: where each participant of a stage goes
// in the composed picture, for IVS's two layouts (LayoutConfiguration.grid and .pip) and every member
// of their configuration. It is pure arithmetic: no I/O, no goroutines, no clock.
//
// The compositor calls Compute with the output size (OutputSize of the EncoderConfiguration's video,
// 1280×720 by default), the resolved configuration (FromModel) and the participants, and draws the
// Frame it returns: on a black background, each Tile in order, the tile's background over Rect, then
// the participant's video, cropped to Crop and scaled into Dest. It computes a new frame whenever a
// participant joins, leaves, starts or stops video or changes video size; Fit alone recomputes one
// tile's crop when only a source size changed.
//
// IVS documents the members but not the pixels ("visual improvements … can be introduced at any
// time"), so the arithmetic below is Rostrum's own, chosen to match IVS's descriptions and screenshots
// and written down here so that a user can predict it. docs/layouts holds pictures of it, drawn by the
// package's tests.
//
// # Pixels
//
// Every tile, and every destination rectangle inside one, has even coordinates and an even size: the
// output is 4:2:0 video, where one chroma sample covers 2×2 pixels, so an odd edge would bleed one
// tile's colour into the next. Hence: an odd output width or height leaves its last column or row
// black; gridGap and pipOffset are rounded up to even (a gap of 3 is drawn as 4); sizes are rounded to
// even, which can miss an aspect ratio by a pixel or two. Crops are even where the source's size is.
// A tile that cannot get even 2×2 pixels (a dozen participants in a 16×16 frame, a gap wider than the
// frame) comes back with an empty Rect and is not drawn.
//
// # Who is shown, in what order
//
// Participants with video stopped (not publishing video, or video muted) keep their tile, drawn as
// background (black or an avatar), unless omitStoppedVideo. The others are ordered by
// participantOrderAttribute: those whose attribute parses as a finite number come first, in ascending
// numeric order ("-1" < "2" < " 3 " < "10" = "1e1"); those whose attribute is missing, empty or not a
// number ("x") follow. Within equal numbers and within the unnumbered, arrival order (Participant.Arrival,
// then ID) decides. Without the attribute the order is arrival order.
//
// The featured participant is the first in that order whose featuredParticipantAttribute is the
// string "true" (IVS compares strings: "TRUE" or "1" do not count); the PiP participant likewise with
// pipParticipantAttribute. When one participant is flagged for both, the PiP window takes it and the
// featured slot goes to the next flagged participant, if any.
//
// # Grid
//
// Tiles have the aspect ratio videoAspectRatio asks for: VIDEO 16:9 (the default), SQUARE 1:1,
// PORTRAIT 3:4. Of every column count c from 1 to n (rows r = ⌈n/c⌉), the grid keeps the one whose
// tiles are largest once fitted, gapped, into c×r cells of the frame; on a tie the one with fewer empty
// cells, then the one with more columns when the frame is landscape (more rows when portrait). Rows
// fill left to right, top to bottom; a short last row is centred, and the whole block is centred in
// the frame. At 1280×720 with gap 2 and 16:9 tiles:
//
//	1: the whole frame           2: 638×358 side by side      5: 424×238, three over two
//	+----------------------+     +----------------------+     +----------------------+
//	|                      |     |                      |     |+------++------++-----+|
//	|          1           |     |+---------++---------+|     ||  1   ||  2   ||  3  ||
//	|                      |     ||    1    ||    2    ||     |+------++------++-----+|
//	|                      |     |+---------++---------+|     |    +------++------+  |
//	|                      |     |                      |     |    |  4   ||  5   |  |
//	+----------------------+     +----------------------+     |    +------++------+  |
//	                                                          +----------------------+
//
// The four tiles of 4 are 636×358 in two rows; 12 are 318×178, four by three. Every tile of a grid
// has the same size, so participants look alike whatever their own video's shape; the fill mode
// (below) decides how each video meets its tile.
//
// AUTO takes the aspect ratio that most of the participants' videos share (16:9 when no size is known
// yet) and, instead of fixed-shape tiles, divides the whole frame into cells: of every column count it
// keeps the one whose cells come closest to that aspect ratio (|ln(cell aspect/target)|), ties broken
// as above. The grid then fills the frame, bar the empty cells of a short last row:
//
//	AUTO, 3 at 1280×720: 638×358 cells, the third centred below
//	+----------------------+
//	|+---------++---------+|
//	||    1    ||    2    ||
//	|+---------++---------+|
//	|     +---------+      |
//	|     |    3    |      |
//	+-----+---------+------+
//
// # Featured participant
//
// With a featured participant the others go to a strip along the bottom of the frame: they are laid
// out like a grid (same rule, same tile aspect) in the bottom quarter of the frame and pushed down to
// its bottom edge; the featured slot takes the full width above them, less the gap. Alone, the featured
// participant has the whole frame. At 1280×720 with three others: featured 1280×538, strip tiles
// 320×180 at y = 540. Its default fill mode is CONTAIN (the whole picture, bars beside it), the
// others' COVER.
//
//	+----------------------+
//	|                      |
//	|       featured       |
//	|                      |
//	|   +----++----++----+ |
//	|   | 1  || 2  || 3  | |
//	+---+----++----++----+-+
//
// # Picture-in-picture
//
// Everyone but the PiP participant forms the background, laid out as AUTO does (so one participant
// fills the frame and two share it side by side), or as a featured slot and strip when a participant
// is featured; gridGap defaults to 0. The PiP participant's window is drawn over it, last (Z 1). With
// no pipParticipantAttribute, or nobody flagged, there is no window: just the background.
//
//	+----------------------+
//	|                      |
//	|          1           |
//	|               +-----+|
//	|               |  2  ||
//	+---------------+-----++
//
// The window's size is pipWidth×pipHeight when both are set; with one of them the other follows the
// PiP participant's video aspect (16:9 until its size is known); with neither, the window has the
// video's shape and a sixteenth of the frame's area (a quarter of each side when the shapes match:
// 320×180 at 1280×720; a portrait camera gets a portrait window of the same area), no more than half
// the frame's width or height. It never exceeds the frame. It sits in its pipPosition corner (default
// BOTTOM_RIGHT), pipOffset pixels from the corner's two edges; an offset that would push the window
// out of the frame shrinks to what fits.
//
// pipBehavior applies when everyone else has left (nobody else is shown): STATIC keeps the window where
// and as it is, over black; DYNAMIC gives the PiP participant the whole frame.
//
// # Fill modes
//
// videoFillMode decides how a video meets its tile (Fit), for every tile; when unset, IVS's defaults:
// in a grid COVER for tiles and CONTAIN for the featured participant, in PiP COVER for all.
//
//	FILL: stretched       COVER: centred crop      CONTAIN: whole, bars
//	+--------------+      +--------------+         +---+--------+---+
//	|  (  o  o  )  |      |    o    o    |         |   | o    o |   |
//	|  (   --   )  |      |      --      |         |   |   --   |   |
//	+--------------+      +--------------+         +---+--------+---+
//
// # Where IVS is silent (Rostrum's choices)
//
//   - AUTO's meaning, the strip's quarter of the frame, the PiP window's default size: as above.
//   - A participantOrderAttribute value that is not a number counts as missing.
//   - A layout with both grid and pip set is refused (ErrInvalidLayout): IVS documents no meaning
//     for it, and a composition has one picture.
//   - The PiP window covers whatever background is under it; the background does not make room.
package layout
