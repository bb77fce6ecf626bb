#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
int main(void) {
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    SwrContext *swr = NULL;
    int rc = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, 16000, &mono, AV_SAMPLE_FMT_S16, 48000, 0, NULL);
    swr_free(&swr);
    AVFormatContext *fmt = avformat_alloc_context();
    avformat_free_context(fmt);
    sws_freeContext(NULL);
    return rc < 0 || avcodec_version() == 0;
}
